"""Activity: what changed (versions applied, sequences deleted) and a live feed of executions,
as `nurture logs --follow` shows them (server-sent events)."""

import asyncio
from collections.abc import AsyncIterator

from fastapi import Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from nurture.insights.activity import changes as recent_changes
from nurture.insights.logs import LogFilter, newer, recent
from nurture.web.analytics import STREAM_SECONDS
from nurture.web.pages import TEMPLATES, Ctx, Nav, Viewer, WebContext, page_router, render

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
async def stream(request: Request, ctx: Ctx, visitor: Viewer, after: int = 0) -> Response:
    """Server-sent events: each batch of new executions as table rows, newest first."""
    return EventSourceResponse(_events(request, ctx, after), ping=15)


def _newer(ctx: WebContext, after: int) -> list[dict]:
    with ctx.store.begin() as connection:
        return newer(connection, LogFilter(), after)


async def _events(request: Request, ctx: WebContext, after: int) -> AsyncIterator[ServerSentEvent]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_SECONDS
    template = TEMPLATES.get_template("_executions.html")
    while loop.time() < deadline and not await request.is_disconnected():
        batch = await run_in_threadpool(_newer, ctx, after)
        if batch:
            after = batch[-1]["id"]
            yield ServerSentEvent(data=template.render(executions=batch[::-1]), event="executions")
        await asyncio.sleep(ctx.live_seconds)
