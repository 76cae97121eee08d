"""What a claimed batch reads besides its enrollments: its leads, funnels and sequences, and
the executions recorded already for the attempts it runs. At the driver, without SQLAlchemy's
row processing (a step reads one lead and converts five of its columns).
"""

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from nurture.store.tables import SequenceVersion


class LeadRow(NamedTuple):
    """What steps, conditions and templates read of a lead: a tuple, read many times a step."""

    id: int
    name: str
    first_name: str
    email: str | None
    phone: str | None
    source: str | None
    status: str | None
    temperature: str | None
    score: int
    tags: list[str]
    timezone: str | None
    funnel_id: int | None
    fields: dict[str, Any]
    opted_out: list[str]
    created_at: datetime
    last_inbound_at: datetime | None  # the WhatsApp 24-hour window (nurture.rules.whatsapp)


LEAD_JSON = frozenset({"tags", "fields", "opted_out"})
_LEAD_TIMES = frozenset({"created_at", "last_inbound_at"})
_LEADS = "SELECT {columns} FROM lead WHERE "
"""The batch's leads at the driver: no SQLAlchemy row processing (a step reads one lead and
converts five of its columns), the JSON read as text through a cache (most leads share `[]`,
`{}` or a few tag lists; the values are shared between rows: callers copy before they change
one)."""


@lru_cache(maxsize=2)
def _lead_columns(dialect: str) -> str:
    text_of = "{}::text" if dialect == "postgresql" else "{}"
    return ", ".join(
        text_of.format(name) if name in LEAD_JSON else name for name in LeadRow._fields
    )


@lru_cache(maxsize=4096)
def from_json(value: str) -> Any:
    """A JSON column's text parsed, through a cache: the value is shared, copy it to change it."""
    return json.loads(value)


@lru_cache(maxsize=4096)  # a batch's rows share a few times (created, due)
def stored_time(value: str | datetime) -> datetime:
    """A time as the driver gives it (SQLite: text), aware UTC as UTCDateTime reads it."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def maybe_time(value: str | datetime | None) -> datetime | None:
    return None if value is None else stored_time(value)


def lead_of(row: Sequence[Any]) -> LeadRow:
    (id_, name, first, email, phone, source, status, temperature, score, tags, zone, funnel,
     fields, opted_out, created, inbound) = row  # fmt: skip
    return LeadRow(
        id_, name, first, email, phone, source, status, temperature, score, from_json(tags), zone,
        funnel, from_json(fields), from_json(opted_out), stored_time(created), maybe_time(inbound),
    )  # fmt: skip


def leads(connection: Connection, ids: Iterable[int]) -> dict[int, LeadRow]:
    """The leads a batch runs for: what steps, conditions and templates read."""
    sql = _LEADS.format(columns=_lead_columns(connection.dialect.name)) + _among(connection, "id")
    rows = connection.exec_driver_sql(sql, {"id": _listed(connection, ids)}).all()
    return {row[0]: lead_of(row) for row in rows}


class Named(NamedTuple):
    """A funnel or a sequence as templates read it (a sequence's current version too)."""

    id: int
    name: str
    slug: str
    current_version: int = 0  # a funnel has none
    canary_version: int | None = None
    """A version taking a share of new enrollments: the enrollments on it stay there."""


def _among(connection: Connection, column: str, kind: str = "int") -> str:
    """`column` is one of a list given as one parameter, in the driver's own style: `=
    ANY(%(column)s::int[])` on Postgres (typed: psycopg would send a smallint[] of small ids,
    which the server compares slowly), `IN (SELECT value FROM json_each(:column))` on SQLite."""
    if connection.dialect.name == "postgresql":
        return f"{column} = ANY(%({column})s::{kind}[])"
    return f"{column} IN (SELECT value FROM json_each(:{column}))"


def _listed(connection: Connection, values: Iterable[Any]) -> Any:
    """The parameter of `_among`: a list on Postgres, its JSON text on SQLite."""
    wanted = sorted(set(values))
    return wanted if connection.dialect.name == "postgresql" else json.dumps(wanted)


def funnels(connection: Connection, ids: Iterable[int | None]) -> dict[int, Named]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    sql = f"SELECT id, name, slug FROM funnel WHERE {_among(connection, 'id')}"
    rows = connection.exec_driver_sql(sql, {"id": _listed(connection, wanted)}).all()
    return {row[0]: Named(*row) for row in rows}


def sequences(connection: Connection, ids: Iterable[int]) -> dict[int, Named]:
    sql = "SELECT id, name, slug, current_version, canary_version FROM sequence WHERE "
    rows = connection.exec_driver_sql(
        sql + _among(connection, "id"), {"id": _listed(connection, ids)}
    ).all()
    return {row[0]: Named(*row) for row in rows}


def definition(connection: Connection, sequence_id: int, version: int) -> dict[str, Any]:
    table = SequenceVersion.__table__
    query = select(table.c.definition).where(
        table.c.sequence_id == sequence_id, table.c.version == version
    )
    return connection.execute(query).scalar_one()


Attempt = tuple[int, str | None, int]
"""(enrollment, step, attempt): the key of an execution."""


class Recorded(NamedTuple):
    """An execution recorded already for an attempt a claim runs (batch.attempted)."""

    id: int
    enrollment_id: int
    step_id: str
    attempt: int
    status: str
    started_at: datetime | None
    error: str | None
    provider_id: str | None
    detail: dict[str, Any] | None  # shared with other rows read alike: copy before changing


def attempted(connection: Connection, keys: Iterable[Attempt]) -> dict[Attempt, Recorded]:
    """The executions recorded already for these attempts (a send under a lease since lost, or
    a crash): id, status, when it started, error, provider id, detail."""
    keys = list(keys)
    detail = "detail::text" if connection.dialect.name == "postgresql" else "detail"
    sql = (
        "SELECT id, enrollment_id, step_id, attempt, status, started_at, error, provider_id, "
        f"{detail} FROM execution WHERE {_among(connection, 'enrollment_id')} AND "
        f"{_among(connection, 'step_id', 'text')}"
    )
    parameters = {
        "enrollment_id": _listed(connection, (key[0] for key in keys)),
        "step_id": _listed(connection, (key[1] for key in keys if key[1] is not None)),
    }
    found = {}
    for row in connection.exec_driver_sql(sql, parameters).all():
        recorded = recorded_of(row)
        found[(recorded.enrollment_id, recorded.step_id, recorded.attempt)] = recorded
    return {key: found[key] for key in keys if key in found}


def recorded_of(row: Sequence[Any]) -> Recorded:
    id_, enrollment_id, step_id, attempt, status, started, error, provider_id, text_ = row
    detail = None if text_ is None else from_json(text_)
    return Recorded(id_, enrollment_id, step_id, attempt, status, maybe_time(started), error,
                    provider_id, detail)  # fmt: skip
