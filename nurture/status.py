"""What `nurture status` shows: the daemons alive, the steps due, the oldest overdue and the lag."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from nurture.store.tables import Enrollment, Worker

ALIVE_WITHIN = timedelta(seconds=30)


def daemon_status(connection: Connection, now: datetime) -> dict[str, Any]:
    """Heartbeats and the due backlog, from two indexed queries."""
    workers = [
        {
            "worker": row.id,
            "hostname": row.hostname,
            "pid": row.pid,
            "started_at": row.started_at,
            "seen_at": row.seen_at,
            "executed": row.executed,
            "alive": now - row.seen_at <= ALIVE_WITHIN,
        }
        for row in connection.execute(select(Worker).order_by(Worker.started_at))
    ]
    due, oldest = connection.execute(
        select(func.count(), func.min(Enrollment.next_run_at)).where(
            Enrollment.status == "active", Enrollment.next_run_at <= now
        )
    ).one()
    counts = dict(
        connection.execute(
            select(Enrollment.status, func.count()).group_by(Enrollment.status)
        ).all()
    )
    oldest = _aware(oldest)
    return {
        "workers": workers,
        "due": due,
        "oldest_due_at": oldest,
        "lag_seconds": (now - oldest).total_seconds() if oldest else 0.0,
        "enrollments": counts,
    }


def _aware(value: datetime | str | None) -> datetime | None:
    """func.min bypasses the column type on SQLite: give the UTC zone back."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
