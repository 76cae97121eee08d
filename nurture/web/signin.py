"""Who is signed in: sign-in links, the session cookie, its CSRF nonce, the viewer and editor roles.

Everything is signed with the dashboard token's own SHA-256 (the store keeps only that): a
link or a session names its token by id and is checked with that token's key, so every worker
and machine on the store checks it alike, and revoking the token ends its sessions at once.
A sign-in link carries its code after `#`: browsers never send that part, so no server or
proxy log holds it; the page posts it.
"""

import secrets
import time
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlmodel import Session

from nurture.store.tables import ApiToken
from nurture.store.tokens import Caller, live_by_id, live_token

Role = Literal["viewer", "editor"]
COOKIE = "nurture_session"
SIGNIN_COOKIE = "nurture_signin"
SESSION_SECONDS = 12 * 3600
LINK_SECONDS = 15 * 60
TRUST_SECONDS = 2.0
_SESSION, _LINK = "nurture.dashboard.session", "nurture.dashboard.link"


@dataclass(frozen=True)
class Visitor:
    """A signed-in visitor: the token's name, its role, the session's CSRF nonce."""

    name: str
    role: Role
    csrf: str

    @property
    def edits(self) -> bool:
        return self.role == "editor"


def role_of(caller: Caller) -> Role | None:
    """editor with `dashboard:edit`, viewer with `dashboard`, else none."""
    if caller.may("dashboard:edit"):
        return "editor"
    return "viewer" if caller.may("dashboard") else None


def _signer(row: ApiToken, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(row.token_hash, salt=salt)


def link_code(row: ApiToken) -> str:
    """The part after `#` of a sign-in link for this token (valid LINK_SECONDS)."""
    return f"{row.id}.{_signer(row, _LINK).dumps(row.id)}"


def session_value(row: ApiToken, nonce: str) -> str:
    """The session cookie of a visitor signed in with this token."""
    return f"{row.id}.{_signer(row, _SESSION).dumps({'n': nonce})}"


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def _split(value: str) -> tuple[int, str] | None:
    head, dot, signed = value.partition(".")
    if not dot or not head.isdigit() or len(head) > 12:
        return None
    return int(head), signed


def token_of_link(session: Session, code: str) -> ApiToken | None:
    """The live dashboard token a sign-in link's code was signed for, if still valid."""
    found = _split(code.strip())
    row = live_by_id(session, found[0]) if found else None
    if row is None or found is None:
        return None
    try:
        ok = _signer(row, _LINK).loads(found[1], max_age=LINK_SECONDS) == row.id
    except BadData:
        return None
    return row if ok and role_of(token_caller(row)) else None


def token_of_secret(session: Session, token: str) -> ApiToken | None:
    """The live dashboard token whose secret was typed into the sign-in form."""
    row = live_token(session, token.strip())
    return row if row is not None and role_of(token_caller(row)) else None


def token_caller(row: ApiToken) -> Caller:
    return Caller(row.name, frozenset(row.scopes))


class Sessions:
    """Session cookies checked lately (their token looked up again after TRUST_SECONDS)."""

    def __init__(self) -> None:
        self.trusted: dict[str, tuple[Visitor, float]] = {}

    def visitor(self, session: Session, value: str | None) -> Visitor | None:
        if not value:
            return None
        now = time.monotonic()
        found = self.trusted.get(value)
        if found is not None and found[1] > now:
            return found[0]
        visitor = _check(session, value)
        if visitor is not None:
            if len(self.trusted) > 1000:
                self.trusted.clear()
            self.trusted[value] = (visitor, now + TRUST_SECONDS)
        return visitor

    def cached(self, value: str | None) -> Visitor | None:
        """The visitor of a cookie checked less than TRUST_SECONDS ago (no store needed)."""
        found = self.trusted.get(value or "")
        return found[0] if found is not None and found[1] > time.monotonic() else None


def _check(session: Session, value: str) -> Visitor | None:
    found = _split(value)
    row = live_by_id(session, found[0]) if found else None
    if row is None or found is None:
        return None
    role = role_of(token_caller(row))
    try:
        data = _signer(row, _SESSION).loads(found[1], max_age=SESSION_SECONDS)
    except BadData:
        return None
    if role is None or not isinstance(data, dict) or not isinstance(data.get("n"), str):
        return None
    return Visitor(row.name, role, data["n"])
