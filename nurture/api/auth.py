"""`Authorization: Bearer TOKEN`: 401 without a valid token, 403 outside the token's scopes."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nurture.api.deps import Ctx
from nurture.tokens import Caller, Scope, authenticate

bearer = HTTPBearer(
    auto_error=False,
    description="A token from `nurture tokens create NAME --scope read|write|ingest`.",
)
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def require(*scopes: Scope) -> Callable[..., Caller]:
    """A dependency admitting a token that has any of `scopes`."""

    def check(
        ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Caller:
        if credentials is None:
            raise HTTPException(
                401, "missing bearer token (Authorization: Bearer TOKEN)", CHALLENGE
            )
        with ctx.store.session() as session:
            caller = authenticate(session, credentials.credentials)
        if caller is None:
            raise HTTPException(401, "invalid or revoked token", CHALLENGE)
        if not any(caller.may(scope) for scope in scopes):
            raise HTTPException(403, f"token {caller.name!r} lacks the {' or '.join(scopes)} scope")
        return caller

    return check


def allows(*scopes: Scope) -> list:
    """The route dependencies of an endpoint that needs one of `scopes`."""
    return [Depends(require(*scopes))]
