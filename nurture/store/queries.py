"""The engine's hot-path SQL, named: claim, rescue, release, and the batched reads and writes.

Statuses are literals in the SQL, not parameters: a generic plan cannot use a partial index
(`ix_enrollment_due WHERE status = 'active'`) with a bound status.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    BindParameter,
    ColumnElement,
    Connection,
    String,
    bindparam,
    case,
    select,
    text,
    update,
)

from nurture.store import bulk
from nurture.store.batch import (
    LEAD_JSON,
    Attempt,
    LeadRow,
    Recorded,
    attempted,
    from_json,
    lead_of,
    leads,
    recorded_of,
    stored_time,
)
from nurture.store.tables import (
    Enrollment,
    Execution,
    Lead,
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
RETURNING {returning}
"""
_RETURNING = (
    "id, lead_id, sequence_id, version, step_id, next_run_at, attempts, attempts + 1 AS attempt,"
    " variants"
)
"""`attempt` is the one this claim runs: an active enrollment's next attempt is attempts + 1."""

# An unknown enrollment's attempt N is uncertain: claimed to settle it, it stands as active ones
# do before attempt N (attempts = N - 1), so a rescue or a release leaves it at attempt N, whose
# execution the next claim finds and settles again, never sends.
_CLAIM_UNKNOWN = """
UPDATE enrollment
SET status = 'running', attempts = attempts - 1, lease_owner = :worker, lease_expires_at = :until,
    updated_at = :now
WHERE id IN (
    SELECT e.id FROM enrollment e
    WHERE e.status = 'unknown' AND e.updated_at < :before AND EXISTS (
        SELECT 1 FROM execution x
        WHERE x.enrollment_id = e.id AND x.step_id = e.step_id AND x.attempt = e.attempts
        AND (x.action_type IN :types OR x.status = 'sent')
    )
    ORDER BY e.updated_at
    LIMIT :batch{lock}
)
RETURNING {returning}
"""


def claim_sql(dialect: str, sql: str = _CLAIM) -> str:
    """The claim; Postgres skips rows another daemon is claiming instead of waiting for them."""
    lock = "\n    FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    return sql.format(lock=lock, returning=_RETURNING)


def claim_statement(dialect: str, sql: str = _CLAIM) -> Any:
    times: list[BindParameter[datetime] | BindParameter[str]]
    times = [bindparam(name, type_=type_) for name, type_ in _TIMES.items()]
    if sql is _CLAIM_UNKNOWN:
        times += [
            bindparam("before", type_=UTCDateTime()),
            bindparam("types", expanding=True, type_=String()),
        ]
    statement = text(claim_sql(dialect, sql)).bindparams(*times)
    return statement.columns(next_run_at=UTCDateTime(), variants=JSON())


def claim_hints(connection: Connection) -> None:
    """Keep Postgres on an ordered scan of the due index for this transaction's claim.

    When it expects few due rows (statistics older than a burst of enrollments) Postgres picks
    a bitmap scan: it reads every due row and sorts them all to keep the first `batch`, so a
    backlog of n due steps makes each claim O(n) and draining it O(n²). The ordered index scan
    stops after `batch` rows whatever the statistics say.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")


class Claimed(NamedTuple):
    """A claimed enrollment (the claim's RETURNING): a tuple, read many times a step."""

    id: int
    lead_id: int
    sequence_id: int
    version: int
    step_id: str | None
    next_run_at: datetime
    attempts: int
    attempt: int
    variants: dict[str, Any] | None
    """The variants drawn at enrollment, {step_id: [variant, version]} (migration 0013)."""


def claim(
    connection: Connection, now: datetime, until: datetime, worker: str, batch: int
) -> list[Any]:
    """Lease up to `batch` due enrollments to `worker`, oldest due first (Claimed tuples)."""
    claim_hints(connection)
    dialect = connection.dialect.name
    parameters: dict[str, Any] = {"now": now, "until": until, "worker": worker, "batch": batch}
    if dialect == "sqlite":  # at the driver: the times as the store keeps them
        parameters |= {"now": bulk.sqlite_time(now), "until": bulk.sqlite_time(until)}
    rows = connection.exec_driver_sql(_driver_claim(dialect), parameters).all()
    return sorted(map(_claimed_of, rows), key=_claim_order)


def _claimed_of(row: Sequence[Any]) -> Claimed:
    """A claim's row as the driver gives it (its time as stored, its JSON as text)."""
    i, lead_id, sequence_id, version, step_id, due, attempts, attempt, variants = row
    drawn = None if variants is None else from_json(variants)
    return Claimed(i, lead_id, sequence_id, version, step_id, stored_time(due), attempts,
                   attempt, drawn)  # fmt: skip


def _claim_order(row: Claimed) -> tuple[datetime, int]:
    return row.next_run_at, row.id


@lru_cache(maxsize=2)
def _driver_claim(dialect: str) -> str:
    """The claim in the driver's own parameter style (`:name` on SQLite, `%(name)s` on
    Postgres), its JSON as text: read without SQLAlchemy's row processing."""
    sql = claim_sql(dialect).replace(
        " variants", " variants::text" if dialect == "postgresql" else " variants"
    )
    if dialect == "postgresql":
        for name in ("worker", "until", "now", "batch"):
            sql = sql.replace(f":{name}", f"%({name})s")
    return sql


def claim_unknown(
    connection: Connection, now: datetime, until: datetime, worker: str, batch: int, **where: Any
) -> list[Any]:
    """Lease up to `batch` unknown enrollments untouched since `where["before"]` whose uncertain
    send can be settled: its channel asks the provider (`where["types"]`, action types), or the
    log says it was sent (a completion that had lost its lease recorded it); Claimed tuples."""
    parameters = {"now": now, "until": until, "worker": worker, "batch": batch} | where
    statement = claim_statement(connection.dialect.name, _CLAIM_UNKNOWN)
    rows = connection.execute(statement, parameters).all()
    return sorted(map(Claimed._make, rows), key=lambda row: row.id)


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


def release(connection: Connection, worker: str, ids: Iterable[int] | None = None) -> int:
    """This worker's leases (of `ids`, or all) back to active; how many."""
    if ids is None:
        return connection.execute(_RELEASE, {"worker": worker}).rowcount
    return connection.execute(
        _held(connection, ids, worker).values(
            status="active", lease_owner=None, lease_expires_at=None
        )
    ).rowcount


def renew(connection: Connection, ids: Iterable[int], worker: str, until: datetime) -> int:
    """Extend this worker's leases of `ids` to `until` (a batch still working); how many.

    On Postgres a row this worker's completion has locked meanwhile is skipped, not waited
    for (the renewal and the completion would lock the batch's rows in different orders, a
    deadlock): it is being written, or renewed by the next beat."""
    if connection.dialect.name != "postgresql":
        return connection.execute(
            _held(connection, ids, worker).values(lease_expires_at=until)
        ).rowcount
    free = (
        select(enrollment.c.id)
        .where(bulk.among(connection, enrollment.c.id, ids))
        .where(enrollment.c.status == "running", enrollment.c.lease_owner == worker)
        .with_for_update(skip_locked=True)
    )
    statement = update(enrollment).where(enrollment.c.id.in_(free.scalar_subquery()))
    return connection.execute(statement.values(lease_expires_at=until)).rowcount


def _held(connection: Connection, ids: Iterable[int], worker: str) -> Any:
    return update(enrollment).where(
        bulk.among(connection, enrollment.c.id, ids),
        enrollment.c.status == "running",
        enrollment.c.lease_owner == worker,
    )


def next_due(connection: Connection) -> datetime | None:
    """The earliest next_run_at of an active enrollment."""
    return connection.execute(_NEXT_DUE).scalar()


class ClaimedBatch(NamedTuple):
    """A claim, the leads it runs for, and the executions recorded already for its attempts."""

    rows: list[Claimed]
    leads: dict[int, LeadRow]
    recorded: dict[Attempt, Recorded]


def claim_batch(
    connection: Connection, now: datetime, until: datetime, worker: str, batch: int
) -> ClaimedBatch:
    """`claim`, with what `read_batch` reads for it: on Postgres in the claim's statement (its
    RETURNING joined to the leads and the log, each a probe of a primary or unique key)."""
    if connection.dialect.name != "postgresql":
        return read_batch(connection, claim(connection, now, until, worker, batch))
    claim_hints(connection)
    parameters = {"now": now, "until": until, "worker": worker, "batch": batch}
    claimed, leads_of, recorded = [], {}, {}
    width = len(Claimed._fields) + len(LeadRow._fields)
    for row in connection.exec_driver_sql(claim_batch_sql(), parameters):
        one = _claimed_of(row[: len(Claimed._fields)])
        claimed.append(one)
        if one.lead_id not in leads_of:
            leads_of[one.lead_id] = lead_of(row[len(Claimed._fields) : width])
        if row[width] is not None:
            key = (one.id, one.step_id, one.attempt)
            recorded[key] = recorded_of((row[width], *key, *row[width + 1 :]))
    return ClaimedBatch(sorted(claimed, key=_claim_order), leads_of, recorded)


def read_batch(connection: Connection, claimed: list[Claimed]) -> ClaimedBatch:
    """The leads of claimed enrollments, and the executions recorded for their attempts."""
    return ClaimedBatch(
        claimed,
        leads(connection, (row.lead_id for row in claimed)),
        attempted(connection, [(row.id, row.step_id, row.attempt) for row in claimed]),
    )


@lru_cache(maxsize=1)
def claim_batch_sql() -> str:
    """The claim in a CTE, each row's lead and recorded execution read by a lateral probe
    (OFFSET 0 keeps each a per-row index lookup whatever the planner guesses of the claim)."""
    claimed = _driver_claim("postgresql").replace("variants::text", "variants::text AS variants")
    lead_columns = ", ".join(
        f"l.{name}::text" if name in LEAD_JSON else f"l.{name}" for name in LeadRow._fields
    )
    return (
        f"WITH c AS ({claimed.strip()}) "
        f"SELECT c.*, {lead_columns}, x.id, x.status, x.started_at, x.error, x.provider_id, "
        "x.detail::text FROM c "
        "CROSS JOIN LATERAL (SELECT * FROM lead WHERE lead.id = c.lead_id OFFSET 0) l "
        "LEFT JOIN LATERAL (SELECT * FROM execution WHERE execution.enrollment_id = c.id "
        "AND execution.step_id = c.step_id AND execution.attempt = c.attempt OFFSET 0) x ON true"
    )


def insert_executions(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert execution rows; their ids, in order."""
    return bulk.insert_ids(connection, execution, rows)


def record_sending(
    connection: Connection, rows: Sequence[dict[str, Any]], worker: str
) -> dict[int, int]:
    """Insert the execution rows (`sending`) of the enrollments still this worker's lease,
    locked until the commit: {enrollment: execution id}. A row whose lease was lost gets none
    (its message is not sent); one statement on either store."""
    held = {"status": "running", "lease_owner": worker}
    return bulk.insert_held(
        connection, execution, rows, key="enrollment_id", parent=enrollment, match=held
    )


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


def update_enrollments(
    connection: Connection, rows: Sequence[dict[str, Any]], worker: str
) -> set[int]:
    """Write each enrollment's next state (`_id`), only while it is still this worker's lease;
    the ids written (the others were converted, stopped, paused or rescued meanwhile)."""
    held = {"status": "running", "lease_owner": worker}
    if connection.dialect.name == "postgresql":
        return set(bulk.update_returning(connection, enrollment, rows, match=held))
    # SQLite: a prepared UPDATE run per row, each guarded by the lease, costs less than one
    # UPDATE ... FROM (VALUES ...) RETURNING over the batch. When every row was still ours
    # (nearly always) that is the whole write; else it is undone, and the rows still ours are
    # read (the writer holds the write lock: they stay ours until the commit) and written.
    ids = {row["_id"] for row in rows}
    with connection.begin_nested() as written:
        if bulk.update(connection, enrollment, rows, match=held) == len(rows):
            return ids
        written.rollback()
    ours = owned(connection, ids, worker)
    bulk.update(connection, enrollment, [row for row in rows if row["_id"] in ours], match=held)
    return ours


def change_score(
    connection: Connection, lead_id: int, *, set_to: int | None, add: int | None, now: datetime
) -> None:
    """Set or add to a lead's score, clamped to 0-100 in SQL (two steps may change it in one batch)."""
    clamped: int | ColumnElement[int]
    if set_to is not None:
        clamped = min(max(set_to, 0), 100)
    else:
        value = lead.c.score + add
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


class Live(NamedTuple):
    """A lead's enrollment that is not over, and its sequence's current version."""

    id: int
    lead_id: int
    sequence_id: int
    status: str
    next_run_at: datetime | None
    current_version: int


LIVE = ("active", "running", "paused", "unknown")


def live_enrollments(connection: Connection, leads: Iterable[int]) -> dict[int, list[Live]]:
    """The enrollments of these leads not over yet, by lead (exclusive sequences compare them)."""
    table = SequenceRow.__table__
    c = enrollment.c
    query = (
        select(c.id, c.lead_id, c.sequence_id, c.status, c.next_run_at, table.c.current_version)
        .join(table, table.c.id == c.sequence_id)
        .where(bulk.among(connection, c.lead_id, leads), c.status.in_(LIVE))
    )
    found: dict[int, list[Live]] = {}
    for row in connection.execute(query):
        found.setdefault(row.lead_id, []).append(Live._make(row))
    return found
