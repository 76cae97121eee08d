"""Live feeds: new rows pushed to an open page as server-sent events (no reload).

A feed asks `newer(after)` for the rows after the last it sent, every `ctx.live_seconds`, and
sends each batch as the HTML of `template` (the page puts it first: `hx-swap="afterbegin"`).
The Activity page's executions and the Inbox's replies are such feeds; Analytics pushes its
whole figures again instead, when they change.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from nurture.web.pages import TEMPLATES, WebContext

STREAM_SECONDS = 600.0
"""A live stream ends after this long; the browser's EventSource opens a new one by itself."""
PING_SECONDS = 15

Newer = Callable[[int], list[dict[str, Any]]]
"""The rows with an id above the one given, newest first."""


def feed(
    request: Request, ctx: WebContext, newer: Newer, after: int, template: str, event: str
) -> EventSourceResponse:
    """The stream of `newer`'s rows after `after`, each batch as `template`'s HTML (`rows`)."""
    return EventSourceResponse(
        _events(request, ctx, newer, after, template, event), ping=PING_SECONDS
    )


async def _events(
    request: Request, ctx: WebContext, newer: Newer, after: int, template: str, event: str
) -> AsyncIterator[ServerSentEvent]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_SECONDS
    html = TEMPLATES.get_template(template)
    while loop.time() < deadline and not await request.is_disconnected():
        batch = await run_in_threadpool(newer, after)
        if batch:
            after = batch[0]["id"]
            yield ServerSentEvent(data=html.render(rows=batch), event=event)
        await asyncio.sleep(ctx.live_seconds)
