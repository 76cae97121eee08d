"""Activity: what changed (versions applied, sequences deleted) and a live feed of executions,
as `nurture logs --follow` shows them (server-sent events)."""

from fastapi import Request, Response

from nurture.insights.activity import changes as recent_changes
from nurture.insights.logs import LogFilter, newer, recent
from nurture.web.live import Feed, stream
from nurture.web.pages import Ctx, Nav, Viewer, WebContext, page_router, render

router = page_router()
NAV = Nav("Activity", "/activity", 60)
SHOWN = 50


@router.get("/activity")
def activity_page(request: Request, ctx: Ctx, visitor: Viewer) -> Response:
    with ctx.store.session() as session:
        changes = recent_changes(session, SHOWN)
        executions = recent(session, LogFilter(), SHOWN)
    after = executions[0]["id"] if executions else 0
    return render(request, "activity.html", changes=changes, executions=executions, after=after)


@router.get("/activity/stream")
def executions_stream(request: Request, ctx: Ctx, visitor: Viewer, after: int = 0) -> Response:
    """Server-sent events: each batch of new executions as table rows, newest first."""
    rows = Feed("executions", "_executions.html", lambda last: _newer(ctx, last), after)
    return stream(request, ctx, rows)


def _newer(ctx: WebContext, after: int) -> list[dict]:
    with ctx.store.begin() as connection:
        return newer(connection, LogFilter(), after)[::-1]
