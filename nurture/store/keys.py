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

from nurture.store import bulk
from nurture.store.tables import LeadKey

Key = tuple[str, str]
"""(kind, value): external_id, email or phone, and the value as the lead's column holds it."""


def owners(connection: Connection, keys: Iterable[Key]) -> dict[Key, int]:
    """The lead that holds each of `keys` (those no lead holds are left out): one read for all
    kinds through the unique index on (kind, value), at the driver (a webhook batch asks
    this every time: no statement built and compiled per call)."""
    wanted = set(keys)
    if not wanted:
        return {}
    kinds = sorted({kind for kind, _ in wanted})
    values = sorted({value for _, value in wanted})
    if connection.dialect.name == "postgresql":
        sql = (
            "SELECT kind, value, lead_id FROM lead_key "
            "WHERE kind = ANY(%(kinds)s) AND value = ANY(%(values)s)"
        )
        found = connection.exec_driver_sql(sql, {"kinds": kinds, "values": values})
    else:
        marks = ", ".join("?" * len(kinds))
        sql = (
            f"SELECT kind, value, lead_id FROM lead_key WHERE kind IN ({marks}) "
            "AND value IN (SELECT value FROM json_each(?))"
        )
        found = connection.exec_driver_sql(sql, (*kinds, json.dumps(values)))
    return {(kind, value): lead_id for kind, value, lead_id in found if (kind, value) in wanted}


def insert(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert keys (kind, value, lead_id, created_at); IntegrityError when one is held already
    (by a writer that got there first: the caller's batch is retried, and finds that lead)."""
    bulk.insert(connection, LeadKey.__table__, rows)


def claim(
    connection: Connection, rows: Sequence[dict[str, Any]], *, looked: bool = False
) -> set[Key]:
    """Insert the keys no lead holds yet, leaving out the others (never an error); those that
    went in. On Postgres a key another transaction is inserting waits for it to end. `looked`:
    the caller read, under this transaction's write lock, that none is held (an import's
    batch on SQLite), so they go in without a second look."""
    if not rows:
        return set()
    if connection.dialect.name == "postgresql":
        return _claim_pg(connection, rows)
    if looked:
        bulk.insert(connection, LeadKey.__table__, rows)
        return {(row["kind"], row["value"]) for row in rows}
    # SQLite: this writer holds the write lock, so what it reads stays true until it commits.
    held = owners(connection, [(row["kind"], row["value"]) for row in rows])
    fresh: dict[Key, dict[str, Any]] = {}
    for row in rows:
        key = (row["kind"], row["value"])
        if key not in held:
            fresh.setdefault(key, row)
    bulk.insert(connection, LeadKey.__table__, list(fresh.values()))
    return set(fresh)


def _claim_pg(connection: Connection, rows: Sequence[dict[str, Any]]) -> set[Key]:
    names = ["kind", "value", "lead_id", "created_at"]
    ordered = sorted(
        rows, key=lambda row: (row["kind"], row["value"])
    )  # one order: fewer deadlocks
    arrays = {name: [row[name] for row in ordered] for name in names}
    sql = (
        "INSERT INTO lead_key (kind, value, lead_id, created_at) "
        "SELECT kind, value, lead_id, created_at FROM unnest(%(kind)b::varchar[], "
        "%(value)b::varchar[], %(lead_id)b::integer[], %(created_at)b::timestamptz[]) "
        "WITH ORDINALITY AS v(kind, value, lead_id, created_at, n) ORDER BY v.n "
        "ON CONFLICT (kind, value) DO NOTHING RETURNING kind, value"
    )
    return {(kind, value) for kind, value in connection.exec_driver_sql(sql, arrays)}


def lead_ids(connection: Connection, count: int) -> list[int]:
    """Ids for `count` new leads, drawn before they are inserted (their keys are claimed first)."""
    if count == 0:
        return []
    if connection.dialect.name == "postgresql":
        sql = "SELECT nextval(pg_get_serial_sequence('lead', 'id')) FROM generate_series(1, %(n)s)"
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
