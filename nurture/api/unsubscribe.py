"""`/u/{token}`: the unsubscribe link of every email, applied as `nurture unsubscribe TOKEN` does.

No bearer token: the signed token is the credential. GET is the link a lead clicks; POST is
the one-click unsubscribe (RFC 8058) mail clients send for `List-Unsubscribe-Post`. Both
answer with a small page, a bad or forged token included (400, never a traceback).
"""

import html
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from nurture.api.deps import Ctx
from nurture.api.errors import status_of
from nurture.errors import NurtureError
from nurture.leads import consent

router = APIRouter(tags=["unsubscribe"])
Token = Annotated[str, Path(description="The signed token of an email's unsubscribe link.")]
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
color:#222}}h1{{font-size:1.4rem}}</style></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""
PAGES = {"text/html": {"schema": {"type": "string"}}}
RESPONSES: dict[int | str, dict] = {
    200: {"description": "Unsubscribed (or already).", "content": PAGES},
    400: {"description": "Not a valid unsubscribe token.", "content": PAGES},
    404: {"description": "The token's lead no longer exists.", "content": PAGES},
    503: {"description": "No unsubscribe secret is configured.", "content": PAGES},
}


def page(title: str, text: str, status: int = 200) -> HTMLResponse:
    body = PAGE.format(title=html.escape(title), text=html.escape(text))
    return HTMLResponse(body, status_code=status)


def apply(ctx: Ctx, token: str) -> HTMLResponse:
    """Opt the token's lead out of its channel; the page saying so (or what went wrong)."""
    secret = ctx.settings.unsubscribe.secret
    try:
        with ctx.store.session(immediate=True) as session:
            done = consent.unsubscribe(
                session, token, secret.get_secret_value() if secret else None, datetime.now(UTC)
            )
            channel, already = done.channel, not done.changed
    except NurtureError as error:
        return page("This link did not work", _why(error), status_of(error))
    said = "You were already unsubscribed" if already else "You are unsubscribed"
    return page("Unsubscribed", f"{said}: you will get no more {channel} from us.")


def _why(error: NurtureError) -> str:
    status = status_of(error)
    if status == 400:
        return "The link is not complete or not valid. Copy the whole link from the email."
    if status == 404:
        return "We no longer hold your details, so you will get no more messages from us."
    return "Unsubscribing is not available right now. Please reply to the email instead."


@router.get("/u/{token}", response_class=HTMLResponse, responses=RESPONSES)
def unsubscribe_link(ctx: Ctx, token: Token) -> HTMLResponse:
    """The link in an email: unsubscribes the lead from that channel and says so."""
    return apply(ctx, token)


@router.post("/u/{token}", response_class=HTMLResponse, responses=RESPONSES)
def one_click_unsubscribe(ctx: Ctx, token: Token) -> HTMLResponse:
    """RFC 8058 one-click unsubscribe (`List-Unsubscribe-Post`), sent by mail clients."""
    return apply(ctx, token)
