"""`Authorization: Bearer TOKEN`: 401 without a valid token, 403 outside the token's scopes.

A valid token is trusted for `TRUST_SECONDS` before it is looked up again, so a busy
webhook does not query the token table on every request; a revoked token therefore stops
working within that time. Unknown tokens are never cached.
"""

import time

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from nurture.api.deps import Context
from nurture.store.tokens import Caller, Scope, authenticate, digest

TRUST_SECONDS = 2.0
MAX_TRUSTED = 1000
DESCRIPTION = "A token from `nurture tokens create NAME --scope read|write|ingest`."
CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Tokens:
    """The tokens checked lately: digest -> (caller, when to check again)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.trusted: dict[str, tuple[Caller, float]] = {}

    async def caller(self, token: str) -> Caller | None:
        key, now = digest(token), time.monotonic()
        found = self.trusted.get(key)
        if found is not None and found[1] > now:
            return found[0]
        caller = await run_in_threadpool(self._look_up, token)
        if caller is not None:
            if len(self.trusted) >= MAX_TRUSTED:
                self.trusted.clear()
            self.trusted[key] = (caller, now + TRUST_SECONDS)
        return caller

    def trusted_caller(self, token: str) -> Caller | None:
        """The token's caller if it was checked lately (no lookup: None when it was not)."""
        found = self.trusted.get(digest(token))
        return found[0] if found is not None and found[1] > time.monotonic() else None

    def _look_up(self, token: str) -> Caller | None:
        with self.ctx.store.session() as session:
            return authenticate(session, token)


class Require(HTTPBearer):
    """The bearer scheme as one dependency (a busy webhook pays for each): token, then scope."""

    def __init__(self, scopes: tuple[Scope, ...]) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=DESCRIPTION)
        self.scopes = scopes

    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise HTTPException(
                401, "missing bearer token (Authorization: Bearer TOKEN)", CHALLENGE
            )
        caller = await request.app.state.context.tokens.caller(credentials.credentials)
        if caller is None:
            raise HTTPException(401, "invalid or revoked token", CHALLENGE)
        if not any(caller.may(scope) for scope in self.scopes):
            wanted = " or ".join(self.scopes)
            raise HTTPException(403, f"token {caller.name!r} lacks the {wanted} scope")
        return caller


def allows(*scopes: Scope) -> list:
    """The route dependencies of an endpoint that needs one of `scopes`."""
    return [Depends(Require(scopes))]
