"""The inbox: replies from leads, tasks to do (done with one click), upcoming appointments,
notifications, and the messages the outbox kept, with their text; new replies and
notifications pushed to the open page (server-sent events, nurture.web.live)."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query, Request, Response

from nurture.engine.appointments import listed
from nurture.insights.outbox import OutboxFilter, recent
from nurture.leads.replies import recent_replies
from nurture.leads.tasks import finish_task, list_notifications, list_tasks
from nurture.web.live import Feed, stream
from nurture.web.pages import Ctx, Editor, Nav, Viewer, WebContext, page_router, record, render

router = page_router()
NAV = Nav("Inbox", "/inbox", 50)
TaskId = Annotated[int, Path(ge=1, le=2**63 - 1)]
RowId = Annotated[int, Query(ge=0, le=2**63 - 1)]
SHOWN = 50


@router.get("/inbox")
def inbox_page(request: Request, ctx: Ctx, visitor: Viewer) -> Response:
    return _page(request, ctx)


def _page(request: Request, ctx: WebContext, message: str | None = None) -> Response:
    now = datetime.now(UTC)
    with ctx.store.session() as session:
        tasks = list_tasks(session, limit=SHOWN)
        appointments = listed(session, upcoming_from=now)[:SHOWN]  # booked, still to come
        notifications = list_notifications(session, SHOWN)
        messages = recent(session, OutboxFilter(), limit=SHOWN)
        replies = recent_replies(session, SHOWN)
    template = "_tasks.html" if request.headers.get("HX-Request") else "inbox.html"
    return render(
        request,
        template,
        tasks=tasks,
        appointments=appointments,
        notifications=notifications,
        messages=messages,
        replies=replies,
        after={
            "replies": replies[0]["id"] if replies else 0,
            "notifications": notifications[0]["id"] if notifications else 0,
        },
        flash=message,
    )


@router.get("/inbox/stream")
def inbox_stream(
    request: Request, ctx: Ctx, visitor: Viewer, replies: RowId = 0, notifications: RowId = 0
) -> Response:
    """Server-sent events: each reply and each notification after those the page shows."""
    return stream(
        request,
        ctx,
        Feed("replies", "_replies.html", lambda last: _newer(ctx, recent_replies, last), replies),
        Feed(
            "notifications",
            "_notifications.html",
            lambda last: _newer(ctx, list_notifications, last),
            notifications,
        ),
    )


def _newer(ctx: WebContext, rows: Callable[..., list[dict]], after: int) -> list[dict]:
    with ctx.store.session() as session:
        return rows(session, SHOWN, after)


@router.post("/inbox/tasks/{task_id}/done")
def task_done(request: Request, ctx: Ctx, visitor: Editor, task_id: TaskId) -> Response:
    """Mark a task done, as `nurture tasks done ID` does."""
    with ctx.store.session(immediate=True) as session:
        task, was_open = finish_task(session, task_id, datetime.now(UTC))
        title = task.title
    said = f"done: {title}" if was_open else f"{title} was done already"
    return _page(request, ctx, record(ctx, visitor, "task done", f"task {task_id}", said))
