"""Live feeds: new rows pushed to an open page as server-sent events (no reload).

Each `Feed` asks `newer(after)` for the rows after the last it sent, every `ctx.live_seconds`,
and sends each batch as the HTML of its template under its event's name (the page puts it
first: `sse-swap="EVENT" hx-swap="afterbegin"`); a page's feeds share one stream. The
Activity page's executions and the Inbox's replies and notifications are such feeds;
Analytics pushes its whole figures again instead, when they change.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from nurture.web.pages import TEMPLATES, WebContext

STREAM_SECONDS = 600.0
"""A live stream ends after this long; the browser's EventSource opens a new one by itself."""
PING_SECONDS = 15


@dataclass
class Feed:
    event: str
    template: str
    """Rendered with `rows`, newest first."""
    newer: Callable[[int], list[dict[str, Any]]]
    """The rows with an id above the one given, newest first."""
    after: int
    """The newest row the page shows already (0: none)."""


def stream(request: Request, ctx: WebContext, *feeds: Feed) -> EventSourceResponse:
    """One stream of the feeds' new rows."""
    return EventSourceResponse(_events(request, ctx, feeds), ping=PING_SECONDS)


async def _events(
    request: Request, ctx: WebContext, feeds: tuple[Feed, ...]
) -> AsyncIterator[ServerSentEvent]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_SECONDS
    after = {feed.event: feed.after for feed in feeds}
    while loop.time() < deadline and not await request.is_disconnected():
        for feed in feeds:
            batch = await run_in_threadpool(feed.newer, after[feed.event])
            if batch:
                after[feed.event] = batch[0]["id"]
                html = TEMPLATES.get_template(feed.template).render(rows=batch)
                yield ServerSentEvent(data=html, event=feed.event)
        await asyncio.sleep(ctx.live_seconds)
