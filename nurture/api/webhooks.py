"""Twilio's callbacks: delivery status of what we sent, and messages leads send us.

No bearer token: each request must carry a valid `X-Twilio-Signature` (HMAC of the URL and
the form under the account's auth token, checked with the SDK's RequestValidator), else 403.
Twilio signs the URL it called: behind a proxy set `[api] public_url` to the public address.
A repeated callback (same message and status) is answered and changes nothing.
"""

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from twilio.request_validator import RequestValidator

from nurture.api.deps import Context, Ctx
from nurture.api.errors import ERRORS
from nurture.engine import callbacks, inbound
from nurture.errors import NotFound
from nurture.leads.fields import text_problem

log = logging.getLogger("nurture.api")
router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"], responses=ERRORS)
SIGNATURE = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _form(required: list[str], fields: dict[str, str]) -> dict[str, Any]:
    """The OpenAPI request body of a Twilio callback (a form, as Twilio posts it)."""
    properties = {
        name: {"type": "string", "examples": [example]} for name, example in fields.items()
    }
    schema = {"type": "object", "required": required, "properties": properties}
    content = {"application/x-www-form-urlencoded": {"schema": schema}}
    signed = {"name": SIGNATURE, "in": "header", "required": True, "schema": {"type": "string"}}
    return {"requestBody": {"required": True, "content": content}, "parameters": [signed]}


STATUS_FORM = _form(
    ["MessageSid", "MessageStatus"],
    {
        "MessageSid": "SM0123",
        "MessageStatus": "delivered",
        "ErrorCode": "30003",
        "ErrorMessage": "",
    },
)
INBOUND_FORM = _form(
    ["MessageSid", "From"], {"MessageSid": "SM4567", "From": "+15555550100", "Body": "STOP"}
)
TWIML: dict[int | str, dict[str, Any]] = {
    200: {"description": "Empty TwiML: no reply.", "content": {"application/xml": {}}}
}


async def signed_form(request: Request, ctx: Context) -> dict[str, str]:
    """The posted form, once its signature is checked under the auth token (403 otherwise)."""
    twilio = ctx.settings.twilio
    if twilio is None or twilio.auth_token is None:
        raise HTTPException(503, "Twilio callbacks need [twilio] and NURTURE_TWILIO__AUTH_TOKEN")
    body = (await request.body()).decode("utf-8", errors="replace")
    form = dict(parse_qsl(body, keep_blank_values=True))
    validator = RequestValidator(twilio.auth_token.get_secret_value())
    if not validator.validate(_called_url(request, ctx), form, request.headers.get(SIGNATURE, "")):
        raise HTTPException(403, f"invalid {SIGNATURE}: not from Twilio, or signed for another URL")
    return form


def _called_url(request: Request, ctx: Context) -> str:
    """The URL Twilio called: the public one when `nurture serve` is behind a proxy."""
    public = ctx.settings.api.public_url
    if not public:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return public.rstrip("/") + request.url.path + query


def _field(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value or len(value) > 100:
        raise HTTPException(422, f"the callback has no valid {name}")
    return value


@router.post("/status", status_code=204, response_class=Response, openapi_extra=STATUS_FORM)
async def delivery_status(request: Request, ctx: Ctx) -> Response:
    """A message's delivery status (Twilio's StatusCallback), stored with its execution."""
    form = await signed_form(request, ctx)
    delivery = callbacks.Delivery(
        _field(form, "MessageSid"),
        _field(form, "MessageStatus").lower(),
        form.get("ErrorCode") or None,
        form.get("ErrorMessage") or None,
    )
    key = f"twilio:status:{delivery.provider_id}:{delivery.status}"
    await run_in_threadpool(_once, ctx, key, lambda session, now: _deliver(session, delivery, now))
    return Response(status_code=204)


def _deliver(session: Any, delivery: callbacks.Delivery, now: datetime) -> None:
    if callbacks.record_delivery(session, delivery, now) is None:
        log.warning(
            "Twilio status %s for %s: no message with that id",
            delivery.status,
            delivery.provider_id,
        )


@router.post("/inbound", response_class=Response, responses=TWIML, openapi_extra=INBOUND_FORM)
async def inbound_message(request: Request, ctx: Ctx) -> Response:
    """A message from a lead: sets its last-inbound time; STOP opts out and START back in.
    From a number no lead has: a new lead through `[twilio] inbound_funnel` when set, else
    a note for the coach."""
    form = await signed_form(request, ctx)
    sid, sender = _field(form, "MessageSid"), _field(form, "From")
    if any(text_problem(value) for value in (sid, sender, form.get("Body", ""))):
        raise HTTPException(422, "the callback's MessageSid, From or Body is not text")
    profile = form.get("ProfileName")  # WhatsApp's name of the sender: a new lead's name
    name = profile if profile and not text_problem(profile) else None
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    text = form.get("Body", "")
    funnel = ctx.settings.twilio.inbound_funnel if ctx.settings.twilio else None

    def receive(session: Any, now: datetime) -> None:
        try:
            got = inbound.text(session, sender, text, now, channel, ctx.rules, funnel, name)
        except NotFound as error:
            log.warning("Twilio inbound %s: %s", sid, error)
            return
        if got.outcome != "reply" or got.matched_by == "new":
            log.info("Twilio inbound %s: %s", sid, got.detail)

    await run_in_threadpool(_once, ctx, f"twilio:inbound:{sid}", receive)
    return Response(EMPTY_TWIML, media_type="application/xml")


def _once(ctx: Context, key: str, handle: Any) -> None:
    """Handle a callback in one transaction, unless its key was handled before."""
    now = datetime.now(UTC)
    try:
        with ctx.store.session(immediate=True) as session:
            if callbacks.first_time(session, key, now):
                handle(session, now)
    except IntegrityError:  # the same callback, handled at this moment by another request
        log.info("repeated callback %s", key)
