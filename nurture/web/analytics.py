"""Analytics: `nurture stats`' figures per sequence and funnel, conversions by day, failures by
channel and reason, one sequence's steps and versions; pushed again as they change (SSE)."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from nurture.insights import channel_stats, stats
from nurture.insights import experiments as _experiments  # noqa: F401 - see below
from nurture.insights.report import StatsRequest, duration, gather, percent
from nurture.rules.periods import Window
from nurture.web.live import STREAM_SECONDS
from nurture.web.pages import TEMPLATES, Ctx, Nav, Viewer, WebContext, page_router, render

router = page_router()
NAV = Nav("Analytics", "/analytics", 30)
Since = Annotated[str | None, Query(max_length=40, description="7d, 30d, a date; none: all")]
Ref = Annotated[str | None, Query(max_length=200)]

TEMPLATES.env.filters |= {"percent": percent, "duration": duration}
# The experiments' statistics import scipy.stats: 0.3-1 s, which the CLI pays only when asked
# (nurture.insights.report imports it then). A worker of the dashboard pays it here, when
# `nurture serve` starts, not in the first visitor's request for a sequence's analytics.


def figures(ctx: WebContext, since: str | None, sequence: str | None) -> dict[str, Any]:
    """What the page shows (a snapshot: see nurture.web.snapshots)."""
    key = ("analytics", since or None, sequence or None)
    return ctx.snapshots.get(key, lambda: _figures(ctx, since, sequence))


def _figures(ctx: WebContext, since: str | None, sequence: str | None) -> dict[str, Any]:
    """From the services `nurture stats` uses."""
    window = Window.parse(since or None, None, datetime.now(UTC), prefix="")
    with ctx.store.session() as session:
        data: dict[str, Any] = {
            "sequences": stats.sequence_figures(session, window),
            "funnels": stats.funnel_figures(session, window),
            "conversions": stats.conversions_by_day(session, window)[-60:],
            "failures": channel_stats.failures(session, window)[:20],
        }
        if sequence:  # `stats SEQUENCE --by version`, `stats SEQUENCE`, `--by variant`
            one = gather(session, StatsRequest(window, sequence, by="version", steps=False))
            min_sample = ctx.settings.experiments.min_sample
            tested = StatsRequest(
                window, sequence, by="variant", min_sample=min_sample, steps=False
            )
            data["detail"] = one | {
                "steps": gather(session, StatsRequest(window, sequence))["steps"],
                "experiments": gather(session, tested)["experiments"],
            }
    most = max((row["converted"] for row in data["conversions"]), default=0)
    return data | {"most_conversions": most}


@router.get("/analytics")
def analytics_page(
    request: Request, ctx: Ctx, visitor: Viewer, since: Since = None, sequence: Ref = None
) -> Response:
    data = figures(ctx, since, sequence)
    return render(request, "analytics.html", data=data, since=since or "", sequence=sequence or "")


@router.get("/analytics/stream")
async def stream(
    request: Request, ctx: Ctx, visitor: Viewer, since: Since = None, sequence: Ref = None
) -> Response:
    """Server-sent events: the figures' HTML again whenever they change."""
    await run_in_threadpool(figures, ctx, since, sequence)  # a wrong sequence or date: its page
    return EventSourceResponse(_events(request, ctx, since, sequence), ping=15)


async def _events(
    request: Request, ctx: WebContext, since: str | None, sequence: str | None
) -> AsyncIterator[ServerSentEvent]:
    last, loop = "", asyncio.get_running_loop()
    deadline = loop.time() + STREAM_SECONDS
    while loop.time() < deadline and not await request.is_disconnected():
        data = await run_in_threadpool(figures, ctx, since, sequence)
        key = json.dumps(data, default=str, sort_keys=True)
        if key != last:
            last = key
            html = TEMPLATES.get_template("_figures.html").render(data=data)
            yield ServerSentEvent(data=html, event="figures")
        await asyncio.sleep(ctx.live_seconds)
