"""The lead_key table's SQL: who holds which keys, and claiming new ones (DESIGN.md §4, identity).

A key is (kind, value): `("email", "sam@example.com")`. The unique index on it is the arbiter
between writers: on Postgres a claim waits for a transaction that inserted the same key to
end, then leaves the key to it, so two writers of one new email cannot both create the lead.
"""

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from nurture.store import bulk
from nurture.store.tables import LeadKey

Key = tuple[str, str]
"""(kind, value): external_id, email or phone, and the value as the lead's column holds it."""


def owners(connection: Connection, keys: Iterable[Key]) -> dict[Key, int]:
    """The lead that holds each of `keys` (those no lead holds are left out): one read for all
    kinds, one probe of the unique index on (kind, value) a key, at the driver (a webhook batch
    asks this every time: no statement built and compiled per call)."""
    wanted = set(keys)
    if not wanted:
        return {}
    if connection.dialect.name == "postgresql":
        # in the index's order: neighbouring probes share pages
        found = connection.exec_driver_sql(_OWNERS_PG, _pg_pairs(sorted(wanted)))
    else:
        by_kind: dict[str, list[str]] = {}
        for kind, value in wanted:
            by_kind.setdefault(kind, []).append(value)
        sql = " UNION ALL ".join([_OWNERS_SQLITE] * len(by_kind))
        marks = [mark for kind, values in by_kind.items() for mark in (kind, json.dumps(values))]
        found = connection.exec_driver_sql(sql, tuple(marks))
    return {(kind, value): lead_id for kind, value, lead_id in found}


# Postgres: a nested loop of index probes, whatever the planner thinks of the table's size (a
# `kind = ANY(...) AND value = ANY(...)` or a join read the whole table once it had a few
# thousand rows: an import's batches got slower as the import went on).
_OWNERS_PG = (
    "SELECT w.kind, w.value, k.lead_id FROM unnest(%(kind)b::varchar[], %(value)b::varchar[]) "
    "AS w(kind, value) CROSS JOIN LATERAL (SELECT lead_id FROM lead_key "
    "WHERE lead_key.kind = w.kind AND lead_key.value = w.value LIMIT 1) AS k"
)
# SQLite: one kind a branch, so each value is probed with its own kind only (`kind IN (...)
# AND value IN (...)` probed every value with every kind).
_OWNERS_SQLITE = (
    "SELECT kind, value, lead_id FROM lead_key WHERE kind = ? "
    "AND value IN (SELECT value FROM json_each(?))"
)


def _pg_pairs(keys: Sequence[Key]) -> dict[str, list[str]]:
    return {"kind": [kind for kind, _ in keys], "value": [value for _, value in keys]}


def insert(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert keys (kind, value, lead_id, created_at); IntegrityError when one is held already
    (by a writer that got there first: the caller's batch is retried, and finds that lead)."""
    bulk.insert(connection, *part(rows))


def part(rows: Sequence[dict[str, Any]]) -> bulk.Part:
    """Keys to insert as a part of `bulk.insert_all` (IntegrityError when one is held, as
    `insert`)."""
    return LeadKey.__table__, rows


KeyRow = tuple[str, str, int, datetime]
"""A key to store, as columns: (kind, value, lead_id, created_at); tuples sort by the key."""


def claim(connection: Connection, rows: Sequence[dict[str, Any]]) -> set[Key]:
    """Insert the keys no lead holds yet, leaving out the others (never an error); those that
    went in. On Postgres a key another transaction is inserting waits for it to end."""
    key_rows = [(row["kind"], row["value"], row["lead_id"], row["created_at"]) for row in rows]
    if not key_rows:
        return set()
    if connection.dialect.name == "postgresql":
        return _claim_pg(connection, sorted(key_rows))
    # SQLite: this writer holds the write lock, so what it reads stays true until it commits.
    held = owners(connection, [(kind, value) for kind, value, *_ in key_rows])
    fresh: dict[Key, KeyRow] = {}
    for row in key_rows:
        if row[:2] not in held:
            fresh.setdefault(row[:2], row)
    _insert_sqlite(connection, list(fresh.values()))
    return set(fresh)


def claim_looked(connection: Connection, rows: Sequence[KeyRow]) -> set[Key]:
    """`claim` of keys the caller read as free (an import's batch), as tuples (no dict a key):
    on SQLite, under this transaction's write lock, they go in without a second look; on
    Postgres they go in plainly, sorted out with `ON CONFLICT` only when a concurrent writer
    took one since."""
    if not rows:
        return set()
    ordered = sorted(rows)  # one order: fewer deadlocks, neighbouring index pages
    if connection.dialect.name != "postgresql":
        _insert_sqlite(connection, ordered)
        return {row[:2] for row in ordered}
    return _insert_pg(connection, ordered)


def _insert_sqlite(connection: Connection, rows: Sequence[KeyRow]) -> None:
    if rows:
        at = bulk.sqlite_time
        converted = [(kind, value, lead, at(when)) for kind, value, lead, when in rows]
        connection.exec_driver_sql(
            "INSERT INTO lead_key (kind, value, lead_id, created_at) VALUES (?, ?, ?, ?)",
            converted,
        )


def _arrays(rows: Sequence[KeyRow]) -> dict[str, Any]:
    """Postgres: the rows as one array per column, a time all share as one value."""
    kinds, values, leads, times = map(list, zip(*rows, strict=True))
    one = times.count(times[0]) == len(times)
    return {"kind": kinds, "value": values, "lead_id": leads, "at": times[0] if one else times}


def _unnest_sql(parameters: dict[str, Any]) -> str:
    times = isinstance(parameters["at"], list)
    arrays = "%(kind)b::varchar[], %(value)b::varchar[], %(lead_id)b::integer[]"
    if times:
        arrays += ", %(at)b::timestamptz[]"
    return (
        "INSERT INTO lead_key (kind, value, lead_id, created_at) SELECT kind, value, lead_id, "
        f"{'v.at' if times else '%(at)s::timestamptz'} FROM unnest({arrays}) "
        f"AS v(kind, value, lead_id{', at' if times else ''})"
    )


def _insert_pg(connection: Connection, rows: Sequence[KeyRow]) -> set[Key]:
    """Insert keys read as free, sorted, plainly in a savepoint (a third less of the server's
    time than `ON CONFLICT DO NOTHING`, which probes the index once more a row); when a
    concurrent writer took one meanwhile (nothing inserted), `_claim_pg` sorts them out."""
    parameters = _arrays(rows)
    try:
        with connection.begin_nested():
            connection.exec_driver_sql(_unnest_sql(parameters), parameters)
    except IntegrityError:
        return _claim_pg(connection, rows)
    return {row[:2] for row in rows}


def _claim_pg(connection: Connection, rows: Sequence[KeyRow]) -> set[Key]:
    """Insert sorted keys, those another lead holds left out; the keys that went in."""
    parameters = _arrays(rows)
    sql = _unnest_sql(parameters) + " ON CONFLICT (kind, value) DO NOTHING RETURNING kind, value"
    return {(kind, value) for kind, value in connection.exec_driver_sql(sql, parameters)}


def lead_ids(connection: Connection, count: int) -> list[int]:
    """Ids for `count` new leads, drawn before they are inserted (their keys are claimed first)."""
    if count == 0:
        return []
    if connection.dialect.name == "postgresql":
        # the sequence's name looked up once, not once an id (that was ten times the draws)
        sql = (
            "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('lead', 'id')::regclass AS seq) "
            "SELECT nextval(s.seq) FROM s, generate_series(1, %(n)s)"
        )
        return sorted(connection.exec_driver_sql(sql, {"n": count}).scalars())
    # SQLite: ids past the largest, safe because this writer holds the write lock
    top = connection.exec_driver_sql("SELECT coalesce(max(id), 0) FROM lead").scalar_one()
    return list(range(top + 1, top + 1 + count))


def rows_for(lead_id: int, keys: Iterable[Key], now: datetime) -> list[dict[str, Any]]:
    return [
        {"kind": kind, "value": value, "lead_id": lead_id, "created_at": now}
        for kind, value in keys
    ]


def of_lead(connection: Connection, lead_id: int) -> list[Key]:
    """Every key of a lead, by kind then value."""
    table = LeadKey.__table__
    query = select(table.c.kind, table.c.value).where(table.c.lead_id == lead_id)
    return sorted((kind, value) for kind, value in connection.execute(query))


def move(connection: Connection, from_id: int, to_id: int) -> int:
    """Give every key of one lead to another (a merge); how many."""
    table = LeadKey.__table__
    moved = update(table).where(table.c.lead_id == from_id).values(lead_id=to_id)
    return connection.execute(moved).rowcount


def forget(connection: Connection, lead_ids: Sequence[int]) -> None:
    """Drop the keys of leads that were never kept (an import's rows that lost a claim)."""
    if lead_ids:
        table = LeadKey.__table__
        connection.execute(delete(table).where(table.c.lead_id.in_(list(lead_ids))))
