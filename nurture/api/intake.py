"""The funnel webhook's lean path: `POST /api/leads` answered without FastAPI's per-request work.

A busy webhook spends most of a lead's time in the framework (routing, dependency solving,
the body's validation wrapped in FastAPI's machinery), not in storing it. This ASGI
middleware takes the plain case itself: a JSON body that `NewLead` (the route's own model)
validates, a bearer token the token cache trusts already with the ingest or write scope, an
Idempotency-Key within its limit. Anything else (no token, a token not cached, a bad body, a
form body, a batch that failed) goes on to the FastAPI route with the body as read, so every
error, status and header is the route's own and the OpenAPI schema is the route's. A failed
batch is not stored twice: its error is handed to the route (`FAILED` in the scope), which
raises it after its own checks.
"""

import json

from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nurture.api.batching import FAILED, Batcher, Pending
from nurture.api.deps import Context
from nurture.api.leads import NewLead
from nurture.leads.arrivals import Arrival

PATH = "/api/leads"
SCOPES = ("ingest", "write")
KEY_LENGTH = 200
"""The Idempotency-Key header's limit (the route's IdempotencyKey)."""
_JSON = (b"application/json", b"application/json; charset=utf-8")


class LeadIntake:
    def __init__(self, app: ASGIApp, context: Context, batcher: Batcher) -> None:
        self.app, self.context, self.batcher = app, context, batcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if not self._plain(headers):
            await self.app(scope, receive, send)
            return
        try:
            body = await _body(receive)
        except Exception as error:  # too large (BodyLimit): the route's stack answers it
            await self.app(scope, _raising(error, receive), send)
            return
        pending = _pending(body, headers)
        if pending is None:
            await self.app(scope, _replay(body, receive), send)
            return
        try:
            answer = await self.batcher.submit(pending)
        except Exception as error:
            await self.app({**scope, FAILED: error}, _replay(body, receive), send)
            return
        fresh = answer["created"] and not answer["replayed"]
        await JSONResponse(answer, status_code=201 if fresh else 200)(scope, receive, send)

    def _plain(self, headers: dict[bytes, bytes]) -> bool:
        """A JSON body, a trusted token that may ingest, a key within its limit."""
        if headers.get(b"content-type", b"").lower() not in _JSON:
            return False
        key = headers.get(b"idempotency-key")
        if key is not None and len(key.decode("latin-1")) > KEY_LENGTH:
            return False
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        caller = self.context.tokens.trusted_caller(token)
        return caller is not None and any(caller.may(scope) for scope in SCOPES)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name, the first of each (as Starlette reads them)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        found.setdefault(name, value)
    return found


def _pending(body: bytes, headers: dict[bytes, bytes]) -> Pending | None:
    """The lead the body holds, validated by the route's model; None: the route answers it."""
    try:
        lead = NewLead.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError):
        return None
    key = headers.get(b"idempotency-key")
    return Pending(
        Arrival(lead.as_input(), lead.funnel), None if key is None else key.decode("latin-1")
    )


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: the route sees it too
            raise _Gone(message)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class _Gone(Exception):
    def __init__(self, message: Message) -> None:
        self.message = message


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read already, then the connection's own messages (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _raising(error: Exception, receive: Receive) -> Receive:
    """The error reading the body gave, raised again where the route reads it."""

    async def raised() -> Message:
        if isinstance(error, _Gone):
            return error.message
        raise error

    return raised
