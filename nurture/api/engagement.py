"""`/c/{token}` (a tracked link: counts the click, redirects) and `/o/{token}` (the open pixel).

No bearer token: the signed token is the credential. A bad, forged or cut-short token gets a
small 404 page (never a traceback, never a redirect anywhere but the message's own link).
"""

import base64
import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from nurture.api.deps import Ctx
from nurture.api.unsubscribe import page
from nurture.engine import clicks
from nurture.errors import NurtureError

log = logging.getLogger("nurture.api")
router = APIRouter(tags=["engagement"])
Token = Annotated[str, Path(description="The signed token of a tracked link or open pixel.")]
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A transparent 1x1 GIF."""
PAGES = {"text/html": {"schema": {"type": "string"}}}
LINK_RESPONSES: dict[int | str, dict] = {
    302: {
        "description": "The link's target (the click is counted once per lead and link).",
        "headers": {"Location": {"schema": {"type": "string"}, "description": "The target."}},
    },
    404: {"description": "Not a valid tracked link.", "content": PAGES},
}
PIXEL_RESPONSES: dict[int | str, dict] = {
    200: {"description": "A transparent 1x1 GIF.", "content": {"image/gif": {}}},
    404: {"description": "Not a valid open pixel.", "content": PAGES},
}


def _visit(request: Request, token: str) -> clicks.Visit:
    agent = request.headers.get("user-agent", "")
    return clicks.Visit(token, datetime.now(UTC), request.method, agent)


def _broken(reason: str) -> HTMLResponse:
    return page(
        "This link did not work",
        f"{reason}. Copy the whole link from the message, or reply to it instead.",
        404,
    )


def _follow(ctx: Ctx, visit: clicks.Visit) -> clicks.Outcome | str:
    secret = ctx.settings.link_secret()
    if not secret:
        return "Tracked links are not set up on this server"
    within = ctx.settings.engagement.scanner_seconds
    try:
        with ctx.store.begin(immediate=True) as connection:
            return clicks.click(connection, secret, visit, within)
    except NurtureError as error:
        log.info("tracked link refused: %s", error)
        return "The link is not complete or not valid"


@router.get(
    "/c/{token}", response_class=RedirectResponse, status_code=302, responses=LINK_RESPONSES
)
async def tracked_link(request: Request, ctx: Ctx, token: Token) -> Response:
    """A tracked link in a message: counts the lead's click, then redirects to the target."""
    return await _redirect(request, ctx, token)


@router.head(
    "/c/{token}", response_class=RedirectResponse, status_code=302, responses=LINK_RESPONSES
)
async def checked_link(request: Request, ctx: Ctx, token: Token) -> Response:
    """A link checker's HEAD request: the same redirect, never counted as a click."""
    return await _redirect(request, ctx, token)


async def _redirect(request: Request, ctx: Ctx, token: str) -> Response:
    outcome = await run_in_threadpool(_follow, ctx, _visit(request, token))
    if isinstance(outcome, str) or outcome.url is None:
        return _broken(outcome if isinstance(outcome, str) else "The link has no target")
    if not outcome.counted:
        log.info("click on %s not counted: %s", token[:12], outcome.reason)
    return RedirectResponse(outcome.url, status_code=302)


def _open(ctx: Ctx, visit: clicks.Visit) -> clicks.Outcome | str:
    secret = ctx.settings.link_secret()
    if not secret or not ctx.settings.engagement.open_pixel:
        return "Open tracking is off"
    try:
        with ctx.store.begin(immediate=True) as connection:
            return clicks.opened(connection, secret, visit)
    except NurtureError as error:
        log.info("open pixel refused: %s", error)
        return "Not an open pixel"


@router.get("/o/{token}", response_class=Response, responses=PIXEL_RESPONSES)
async def open_pixel(request: Request, ctx: Ctx, token: Token) -> Response:
    """An HTML email's open pixel (`[engagement] open_pixel = true`): counts the open once."""
    outcome = await run_in_threadpool(_open, ctx, _visit(request, token))
    if isinstance(outcome, str):
        return _broken(outcome)
    headers = {"Cache-Control": "no-store, private"}
    return Response(PIXEL, media_type="image/gif", headers=headers)
