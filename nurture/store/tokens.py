"""Bearer tokens of the HTTP API: created (shown once), listed, revoked, checked.

Only a token's SHA-256 is stored. A token carries 256 random bits, so a plain hash is as
good as a slow one (no dictionary to try), and the lookup by hash is one indexed query; the
hashes are then compared with `hmac.compare_digest` so no timing says how close a guess was.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlmodel import Session, col, select

from nurture.errors import NotFound, NurtureError
from nurture.store.tables import ApiToken

Scope = Literal["read", "write", "ingest", "dashboard", "dashboard:edit"]
SCOPES: tuple[str, ...] = get_args(Scope)
PREFIX = "nrt_"


@dataclass(frozen=True)
class Caller:
    """Who a valid token belongs to and what it may do."""

    name: str
    scopes: frozenset[str]

    def may(self, scope: Scope) -> bool:
        """`write` includes `read`, `dashboard:edit` includes `dashboard` (the coach dashboard's
        viewer); `ingest` is only the funnel webhook and lead events."""
        wider = {"read": "write", "dashboard": "dashboard:edit"}.get(scope)
        return scope in self.scopes or wider in self.scopes


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, scopes: list[str], now: datetime) -> str:
    """A new token under `name`; the only time the token itself is seen."""
    name = name.strip()
    if not name:
        raise NurtureError("a token needs a name")
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown or not scopes:
        raise NurtureError(f"scope must be one or more of {', '.join(SCOPES)}, not {unknown}")
    if _live(session, name) is not None:
        raise NurtureError(f"a token named {name!r} exists already (revoke it first)")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=digest(token), scopes=sorted(set(scopes)), created_at=now)
    session.add(row)
    session.flush()
    return token


def list_tokens(session: Session) -> list[dict[str, Any]]:
    """Every token's name, scopes and dates (never the token or its hash)."""
    rows = session.exec(select(ApiToken).order_by(ApiToken.name, col(ApiToken.id))).all()
    return [token_row(row) for row in rows]


def token_row(row: ApiToken) -> dict[str, Any]:
    """A token as `list_tokens` shows it: name, scopes and dates."""
    return {key: getattr(row, key) for key in ("name", "scopes", "created_at", "revoked_at")}


def revoke_token(session: Session, name: str, now: datetime) -> ApiToken:
    """Revoke at once: the next request with the token gets 401."""
    row = _live(session, name)
    if row is None:
        raise NotFound(f"no live token named {name!r} (see `nurture tokens list`)")
    row.revoked_at = now
    session.add(row)
    return row


def _live(session: Session, name: str) -> ApiToken | None:
    """The token under this name that is not revoked (there is one at most)."""
    live = select(ApiToken).where(ApiToken.name == name, col(ApiToken.revoked_at).is_(None))
    return session.exec(live).first()


def authenticate(session: Session, token: str) -> Caller | None:
    """The caller a presented token belongs to; None for an unknown or revoked token."""
    row = live_token(session, token)
    return None if row is None else Caller(row.name, frozenset(row.scopes))


def live_token(session: Session, token: str) -> ApiToken | None:
    """The live token row of a presented token; None for an unknown or revoked token."""
    wanted = digest(token)
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == wanted)).first()
    if row is None or row.revoked_at is not None:
        return None
    return row if hmac.compare_digest(row.token_hash, wanted) else None


DASHBOARD_SCOPES = ("dashboard", "dashboard:edit")


def live_by_id(session: Session, token_id: int) -> ApiToken | None:
    """The live token with this id (a dashboard session names its token by id)."""
    row = session.get(ApiToken, token_id)
    return row if row is not None and row.revoked_at is None else None


def dashboard_token(session: Session, name: str | None = None) -> ApiToken:
    """The live token a dashboard sign-in link is for: `name`'s, else the newest that can edit,
    else the newest that can view; NotFound saying how to make one."""
    query = select(ApiToken).where(col(ApiToken.revoked_at).is_(None))
    if name is not None:
        query = query.where(ApiToken.name == name)
    rows = [row for row in session.exec(query) if set(row.scopes) & set(DASHBOARD_SCOPES)]
    if not rows:
        which = f"named {name!r} " if name else ""
        raise NotFound(
            f"no live token {which}with the dashboard scope: create one with "
            "`nurture tokens create coach --scope dashboard:edit` (or --scope dashboard to view)"
        )
    return max(rows, key=lambda row: ("dashboard:edit" in row.scopes, row.created_at, row.id))
