"""The dashboard's changes, each with the name of the token that made it."""

from datetime import datetime

from sqlmodel import Session, col, select

from nurture.store.tables import Activity


def record(
    session: Session,
    actor: str,
    action: str,
    subject: str,
    now: datetime,
    detail: str | None = None,
) -> None:
    """Keep one change: `actor` (a token's name) did `action` to `subject`."""
    session.add(Activity(at=now, actor=actor, action=action, subject=subject[:500], detail=detail))


def recent(session: Session, limit: int = 50) -> list[Activity]:
    """The newest `limit` changes, newest first."""
    return list(session.exec(select(Activity).order_by(col(Activity.id).desc()).limit(limit)))
