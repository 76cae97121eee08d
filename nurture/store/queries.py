"""The engine's hot-path SQL, named: claim, rescue, release, and the batched reads and writes.

Statuses are literals in the SQL, not parameters: a generic plan cannot use a partial index
(`ix_enrollment_due WHERE status = 'active'`) with a bound status.
"""

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Row,
    Text,
    TypeDecorator,
    bindparam,
    case,
    cast,
    select,
    text,
    type_coerce,
    update,
)

from nurture.store import bulk
from nurture.store.tables import (
    Enrollment,
    Execution,
    Funnel,
    Lead,
    SequenceVersion,
    UTCDateTime,
)
from nurture.store.tables import Sequence as SequenceRow

enrollment = Enrollment.__table__
execution = Execution.__table__
lead = Lead.__table__
_TIMES = {"now": UTCDateTime(), "until": UTCDateTime()}

_CLAIM = """
UPDATE enrollment
SET status = 'running', lease_owner = :worker, lease_expires_at = :until, updated_at = :now
WHERE id IN (
    SELECT id FROM enrollment
    WHERE status = 'active' AND next_run_at <= :now
    ORDER BY next_run_at
    LIMIT :batch{lock}
)
RETURNING id, lead_id, sequence_id, version, step_id, next_run_at, attempts
"""


def claim_sql(dialect: str) -> str:
    """The claim; Postgres skips rows another daemon is claiming instead of waiting for them."""
    return _CLAIM.format(lock="\n    FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else "")


def claim_statement(dialect: str) -> Any:
    times = (bindparam(name, type_=type_) for name, type_ in _TIMES.items())
    statement = text(claim_sql(dialect)).bindparams(*times)
    return statement.columns(next_run_at=UTCDateTime())


def claim_hints(connection: Connection) -> None:
    """Keep Postgres on an ordered scan of the due index for this transaction's claim.

    When it expects few due rows (statistics older than a burst of enrollments) Postgres picks
    a bitmap scan: it reads every due row and sorts them all to keep the first `batch`, so a
    backlog of n due steps makes each claim O(n) and draining it O(n²). The ordered index scan
    stops after `batch` rows whatever the statistics say.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")


def claim(
    connection: Connection, now: datetime, until: datetime, worker: str, batch: int
) -> list[Row]:
    """Lease up to `batch` due enrollments to `worker`, oldest due first."""
    claim_hints(connection)
    parameters = {"now": now, "until": until, "worker": worker, "batch": batch}
    rows = connection.execute(claim_statement(connection.dialect.name), parameters).all()
    return sorted(rows, key=lambda row: (row.next_run_at, row.id))


_RESCUE = text(
    "UPDATE enrollment SET status = 'active', lease_owner = NULL, lease_expires_at = NULL "
    "WHERE status = 'running' AND lease_expires_at < :now"
).bindparams(bindparam("now", type_=UTCDateTime()))

_RELEASE = text(
    "UPDATE enrollment SET status = 'active', lease_owner = NULL, lease_expires_at = NULL "
    "WHERE status = 'running' AND lease_owner = :worker"
)

_NEXT_DUE = text("SELECT min(next_run_at) AS due FROM enrollment WHERE status = 'active'").columns(
    due=UTCDateTime()
)


def rescue(connection: Connection, now: datetime) -> int:
    """Expired leases back to active; how many."""
    return connection.execute(_RESCUE, {"now": now}).rowcount


def release(connection: Connection, worker: str) -> int:
    """This worker's leases back to active; how many."""
    return connection.execute(_RELEASE, {"worker": worker}).rowcount


def next_due(connection: Connection) -> datetime | None:
    """The earliest next_run_at of an active enrollment."""
    return connection.execute(_NEXT_DUE).scalar()


_LEAD_COLUMNS = ("id", "name", "first_name", "email", "phone", "source", "status", "temperature")
_LEAD_COLUMNS += ("score", "tags", "timezone", "funnel_id", "fields", "opted_out", "created_at")
_LEAD_COLUMNS += ("last_inbound_at",)  # the WhatsApp 24-hour window (nurture.whatsapp)


class SharedJSON(TypeDecorator[Any]):
    """JSON read from its text through a cache: most leads share `[]`, `{}` or a few tag lists.

    The values are shared between rows: callers copy before they change one.
    """

    impl = Text
    cache_ok = True

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else _parsed(value)


@lru_cache(maxsize=4096)
def _parsed(value: str) -> Any:
    return json.loads(value)


def _lead_column(name: str) -> Any:
    column = lead.c[name]
    if isinstance(column.type, JSON):
        return type_coerce(cast(column, Text), SharedJSON()).label(name)
    return column


def leads(connection: Connection, ids: Iterable[int]) -> dict[int, Row]:
    """The leads a batch runs for: what steps, conditions and templates read."""
    query = select(*(_lead_column(name) for name in _LEAD_COLUMNS))
    rows = connection.execute(query.where(bulk.among(connection, lead.c.id, ids)))
    return {row.id: row for row in rows}


def funnels(connection: Connection, ids: Iterable[int | None]) -> dict[int, Row]:
    table = Funnel.__table__
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    columns = (table.c.id, table.c.name, table.c.slug)
    rows = connection.execute(select(*columns).where(bulk.among(connection, table.c.id, wanted)))
    return {row.id: row for row in rows}


def sequences(connection: Connection, ids: Iterable[int]) -> dict[int, Row]:
    table = SequenceRow.__table__
    columns = (table.c.id, table.c.name, table.c.slug, table.c.current_version)
    query = select(*columns).where(bulk.among(connection, table.c.id, ids))
    return {row.id: row for row in connection.execute(query)}


def definition(connection: Connection, sequence_id: int, version: int) -> dict[str, Any]:
    table = SequenceVersion.__table__
    query = select(table.c.definition).where(
        table.c.sequence_id == sequence_id, table.c.version == version
    )
    return connection.execute(query).scalar_one()


def sending(connection: Connection, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Executions left in `sending` (a crash mid-send) for these (enrollment, step) pairs."""
    keys = list(keys)
    query = select(execution.c.id, execution.c.enrollment_id, execution.c.step_id).where(
        bulk.among(connection, execution.c.enrollment_id, (key[0] for key in keys)),
        execution.c.status == "sending",
    )
    found = {(row.enrollment_id, row.step_id): row.id for row in connection.execute(query)}
    return {key: found[key] for key in keys if key in found}


def insert_executions(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert execution rows; their ids, in order."""
    return bulk.insert_ids(connection, execution, rows)


def finish_executions(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Set status, end time, error, provider id and detail of executions by id (`_id`)."""
    bulk.update(connection, execution, rows)


def owned(connection: Connection, ids: Iterable[int], worker: str) -> set[int]:
    """Those of `ids` still running under this worker's lease, locked until the commit."""
    query = (
        select(enrollment.c.id)
        .where(bulk.among(connection, enrollment.c.id, ids))
        .where(enrollment.c.status == "running", enrollment.c.lease_owner == worker)
        .with_for_update()
    )
    return set(connection.execute(query).scalars())


def update_enrollments(connection: Connection, rows: Sequence[dict[str, Any]], worker: str) -> None:
    """Write each enrollment's next state (`_id`), only while it is still this worker's lease."""
    bulk.update(connection, enrollment, rows, match={"status": "running", "lease_owner": worker})


def change_score(
    connection: Connection, lead_id: int, *, set_to: int | None, add: int | None, now: datetime
) -> None:
    """Set or add to a lead's score, clamped to 0-100 in SQL (two steps may change it in one batch)."""
    value = set_to if set_to is not None else lead.c.score + add
    clamped = case((value < 0, 0), (value > 100, 100), else_=value)
    connection.execute(
        update(lead).where(lead.c.id == lead_id).values(score=clamped, updated_at=now)
    )


def add_tags(connection: Connection, lead_id: int, tags: Sequence[str], now: datetime) -> None:
    """Add tags a lead does not have yet (ignoring case), keeping their order."""
    current = connection.execute(
        select(lead.c.tags).where(lead.c.id == lead_id).with_for_update()
    ).scalar_one()
    have = {tag.casefold() for tag in current}
    new = [tag for tag in tags if tag.casefold() not in have]
    if new:
        connection.execute(
            update(lead).where(lead.c.id == lead_id).values(tags=[*current, *new], updated_at=now)
        )


def insert_rows(connection: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert effect rows (tasks, appointments, notifications, outbox messages)."""
    bulk.insert(connection, table.__table__, rows)
