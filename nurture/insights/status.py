"""What `nurture status` shows: the daemons (alive or dead), the steps due, the lag, the sends to settle."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select
from sqlmodel import col

from nurture.engine.delivery import settle
from nurture.store.tables import Enrollment, Sequence, Worker

HEARTBEAT = timedelta(seconds=5)
"""How often a daemon beats by default (DaemonOptions.heartbeat)."""
ALIVE_WITHIN = 6 * HEARTBEAT  # a few beats missed (a long batch may delay one): dead, or hung
LISTED_FOR = timedelta(hours=1)
"""A daemon dead for longer is not listed (status says how many it hides)."""


def daemon_status(connection: Connection, now: datetime, *, every: bool = False) -> dict[str, Any]:
    """Heartbeats, the due backlog and the sends waiting to be settled; read-only.

    Daemons dead for longer than LISTED_FOR are counted, not listed, unless `every`.
    """
    recent = col(Worker.seen_at) >= now - LISTED_FOR
    listed = select(Worker).order_by(col(Worker.started_at))
    workers = connection.execute(listed if every else listed.where(recent)).all()
    hidden = 0 if every else _count(connection, Worker, ~recent)
    due, oldest = connection.execute(
        select(func.count(), func.min(Enrollment.next_run_at)).where(
            col(Enrollment.status) == "active", col(Enrollment.next_run_at) <= now
        )
    ).one()
    counts = dict(
        connection.execute(
            select(col(Enrollment.status), func.count()).group_by(col(Enrollment.status))
        ).all()
    )
    oldest = _aware(oldest)
    waiting = settle.waiting_counts(connection)
    return {
        "workers": [_worker(row, now) for row in workers],
        "hidden_workers": hidden,
        "due": due,
        "oldest_due_at": oldest,
        "lag_seconds": (now - oldest).total_seconds() if oldest else 0.0,
        "enrollments": counts,
        "settle": {"waiting": sum(waiting.values()), "sequences": waiting, "hint": settle.HINT},
        "canaries": canaries(connection),
    }


def canaries(connection: Connection) -> list[dict[str, Any]]:
    """The canaries in progress: the version, its share of new enrollments, since when."""
    c = Sequence.__table__.c
    query = (
        select(c.name, c.current_version, c.canary_version, c.canary_share, c.canary_started_at)
        .where(c.canary_version.is_not(None), c.deleted_at.is_(None))
        .order_by(c.name)
    )
    keys = ("sequence", "current_version", "version", "share", "since")
    return [dict(zip(keys, row, strict=True)) for row in connection.execute(query)]


def _worker(row: Any, now: datetime) -> dict[str, Any]:
    keys = ("hostname", "pid", "started_at", "seen_at", "executed")
    silent = now - row.seen_at
    return (
        {"worker": row.id}
        | {key: getattr(row, key) for key in keys}
        | {
            "alive": silent <= ALIVE_WITHIN,
            "silent_seconds": round(silent.total_seconds(), 1),
        }
    )


def _count(connection: Connection, table: Any, where: Any) -> int:
    return connection.execute(select(func.count()).select_from(table).where(where)).scalar_one()


def _aware(value: datetime | str | None) -> datetime | None:
    """func.min bypasses the column type on SQLite: give the UTC zone back."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
