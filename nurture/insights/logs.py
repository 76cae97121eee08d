"""The execution log, filtered: newest first, or every entry after one already seen (`--follow`).

filters = LogFilter(sequence_id=3, status="failed")
rows = recent(session, filters, limit=50)
for batch in follow(store, filters, after=rows[0]["id"], stop=...): ...
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlmodel import Session, col

from nurture.errors import BadFilter
from nurture.spec.diagnostics import did_you_mean
from nurture.store.aggregates import seconds
from nurture.store.db import Store
from nurture.store.tables import Execution, Lead, Sequence

execution = Execution.__table__
STATUSES = ("sending", "sent", "done", "skipped", "failed", "retry", "unknown")
CONTROL_EVENTS = ("advanced", "paused", "resumed", "stopped")


@dataclass(frozen=True)
class LogFilter:
    """Which executions to show; None matches everything."""

    sequence_id: int | None = None
    step_id: str | None = None
    lead_id: int | None = None
    funnel_id: int | None = None
    status: str | None = None
    since: datetime | None = None


def check_status(status: str | None) -> str | None:
    """The status, lower-cased, if an execution can have it."""
    return known_value(status, (*STATUSES, *CONTROL_EVENTS), "an execution status")


def known_value(value: str | None, known: tuple[str, ...], what: str) -> str | None:
    """`--status VALUE`, lower-cased, if it is one of `known` (`what` they are, for the error)."""
    if value is None:
        return None
    wanted = value.strip().lower()
    if wanted not in known:
        raise BadFilter(
            f"--status {value!r} is not {what}{did_you_mean(wanted, known)} "
            f"(one of: {', '.join(known)})"
        )
    return wanted


def _conditions(filters: LogFilter) -> list[Any]:
    return conditions(filters, execution.c, execution.c.status, execution.c.started_at)


def conditions(filters: LogFilter, c: Any, status: Any, at: Any) -> list[Any]:
    """The filters as conditions on a table of the log's kind (`c`: its columns, with
    sequence_id, step_id and lead_id; `status` and `at`: the columns `--status` and `--since`
    read)."""
    wanted = [
        (filters.sequence_id, lambda v: c.sequence_id == v),
        (filters.step_id, lambda v: c.step_id == v),
        (filters.lead_id, lambda v: c.lead_id == v),
        (filters.status, lambda v: status == v),
        (filters.since, lambda v: at >= v),
        (
            filters.funnel_id,
            lambda v: c.lead_id.in_(select(col(Lead.id)).where(col(Lead.funnel_id) == v)),
        ),
    ]
    return [make(value) for value, make in wanted if value is not None]


def _query(connection: Connection, filters: LogFilter) -> Any:
    c, sequence, lead = execution.c, Sequence.__table__, Lead.__table__
    lag = seconds(connection.dialect.name, c.started_at, c.due_at)
    return (
        select(
            c.id,
            c.started_at,
            c.finished_at,
            c.due_at,
            c.enrollment_id,
            c.lead_id,
            lead.c.name.label("lead"),
            sequence.c.name.label("sequence"),
            c.version,
            c.step_id,
            c.variant,  # the variant of an A/B-tested step it ran
            c.action_type,
            c.attempt,
            c.status,
            c.error,
            c.provider_id,
            c.delivery_status,  # what the provider last reported (Twilio's status callback)
            lag.label("lag_seconds"),
        )
        .join(sequence, sequence.c.id == c.sequence_id)
        .join(lead, lead.c.id == c.lead_id)
        .where(*_conditions(filters))
    )


def _entry(row: Any) -> dict[str, Any]:
    entry = dict(row._mapping)
    lag = entry["lag_seconds"]
    entry["lag_seconds"] = None if lag is None else round(float(lag), 1)
    return entry


def recent(session: Session, filters: LogFilter, limit: int = 50) -> list[dict[str, Any]]:
    """The newest `limit` executions that pass the filters, newest first."""
    connection = session.connection()
    query = _query(connection, filters).order_by(execution.c.id.desc()).limit(limit)
    return [_entry(row) for row in connection.execute(query)]


def newer(connection: Connection, filters: LogFilter, after: int) -> list[dict[str, Any]]:
    """Executions after id `after` that pass the filters, oldest first."""
    query = _query(connection, filters).where(execution.c.id > after).order_by(execution.c.id)
    return [_entry(row) for row in connection.execute(query.limit(1000))]


def follow(
    store: Store,
    filters: LogFilter,
    after: int,
    *,
    poll: float = 1.0,
    stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[list[dict[str, Any]]]:
    """New entries as they land, a batch per poll, until `stop()` says so."""
    while not stop():
        with store.begin() as connection:
            batch = newer(connection, filters, after)
        if batch:
            after = batch[-1]["id"]
            yield batch
        else:
            sleep(poll)
