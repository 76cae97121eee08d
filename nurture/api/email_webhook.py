"""`POST /webhooks/email`: a lead's answer by email, as the raw RFC 822 message.

Posted as the body itself (`Content-Type: message/rfc822`, what an MTA pipe or `curl
--data-binary @reply.eml` sends), as the `email` field of a form (SendGrid's Inbound Parse with
"POST the raw, full MIME message"), as its `body-mime` field (Mailgun's route forwarding to a
URL ending in `mime`: `/webhooks/email/mime` is the same endpoint), or as the `RawEmail` of a
JSON body (Postmark's inbound webhook with raw content included).

No bearer token: the shared secret `[inbound_email] secret` (NURTURE_INBOUND_EMAIL__SECRET),
given as the `X-Nurture-Token` header, as the password of HTTP basic auth (a URL such as
`https://inbound:SECRET@nurture.example.com/webhooks/email`), or as `?token=SECRET`, compared
in constant time: missing 401, wrong 403, not configured 503. Each email is recorded once (by
its Message-ID): a provider retrying gets 200 and nothing changes.
"""

import base64
import binascii
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from nurture.api.deps import Context, Ctx
from nurture.api.errors import ERRORS
from nurture.engine import inbound

log = logging.getLogger("nurture.api")
router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERRORS)
TOKEN = "X-Nurture-Token"
RAW_FIELDS = ("email", "body-mime", "RawEmail")
"""Where providers put the raw message in a form or a JSON body."""
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")

RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {name: {"type": "string"} for name in RAW_FIELDS[:2]},
                }
            },
            "application/json": {
                "schema": {"type": "object", "properties": {"RawEmail": {"type": "string"}}}
            },
        },
    },
    "parameters": [
        {"name": TOKEN, "in": "header", "required": False, "schema": {"type": "string"}},
        {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}},
    ],
}
RECEIVED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "What became of the email: outcome reply, auto (an automatic answer, "
        "ignored), bounce (to the bounce handling), repeat (received before) or unknown "
        "(no lead matches)."
    }
}


@router.post("/email", openapi_extra=RAW_BODY, responses=RECEIVED)
@router.post("/email/mime", include_in_schema=False)  # Mailgun's raw MIME goes to .../mime
async def inbound_email(request: Request, ctx: Ctx) -> dict[str, Any]:
    """A lead's answer by email: matched to the email it answers (In-Reply-To, References),
    else to the lead by its address; stops stop_on_reply sequences and tells the coach."""
    _check_token(request, ctx)
    data = await _raw_message(request)
    received = await run_in_threadpool(_receive, ctx, data)
    if received.outcome != "reply":
        log.info("inbound email: %s", received.detail)
    return received.to_dict()


def _check_token(request: Request, ctx: Context) -> None:
    secret = ctx.settings.inbound_email.secret
    if secret is None:
        raise HTTPException(503, "inbound email needs NURTURE_INBOUND_EMAIL__SECRET")
    given = (
        request.headers.get(TOKEN) or _basic_password(request) or request.query_params.get("token")
    )
    if not given:
        raise HTTPException(
            401,
            f"no token: give the inbound email secret as {TOKEN}, basic auth or ?token=",
            headers={"WWW-Authenticate": 'Basic realm="nurture inbound email"'},
        )
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        raise HTTPException(403, "the token is not the inbound email secret")


def _basic_password(request: Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value, validate=True).decode().partition(":")[2] or None
    except (binascii.Error, UnicodeDecodeError):
        return None


async def _raw_message(request: Request) -> bytes:
    """The raw message from the body, a form's field or a JSON body's RawEmail (422 if none)."""
    kind = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    if kind in FORM_TYPES:
        form = await request.form()
        found = next((form[name] for name in RAW_FIELDS if name in form), None)
        if found is None:
            raise HTTPException(422, _missing("the form"))
        return found.encode() if isinstance(found, str) else await found.read()
    body = await request.body()
    if kind == "application/json":
        try:
            raw = json.loads(body).get("RawEmail")
        except (ValueError, AttributeError):
            raise HTTPException(422, "the body is not a JSON object") from None
        if not isinstance(raw, str) or not raw:
            raise HTTPException(422, _missing("the JSON body"))
        return raw.encode()
    return body


def _missing(where: str) -> str:
    return (
        f"{where} has no raw message: give it as `email` (SendGrid, raw MIME), `body-mime` "
        "(Mailgun, a URL ending in /mime), `RawEmail` (Postmark, raw content included) or post "
        "the message itself as message/rfc822"
    )


def _receive(ctx: Context, data: bytes) -> inbound.Received:
    now = datetime.now(UTC)
    try:
        with ctx.store.session(immediate=True) as session:
            return inbound.email(session, data, now)
    except IntegrityError:  # the same email, received at this moment by another request
        return inbound.Received("repeat", "the email was received at the same moment")
