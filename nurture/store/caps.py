"""The cap ledger: what each lead got lately, locked while the engine decides its next message.

    found = caps.lock(connection, leads)       # {lead: entries} of the rows that exist, locked
    taken = caps.insert(connection, new)       # the new rows; the leads another daemon made first
    caps.write(connection, changed)            # the rows `lock` found

`lock` reads the leads' rows in id order, locking each until the commit (Postgres: FOR
UPDATE; SQLite: the write lock BEGIN IMMEDIATE took already). A lead without a row gets one
from `insert`, holding what the engine decided; when another daemon inserted it meanwhile,
the insert waits for that daemon's commit and leaves its row alone, and the engine locks and
reads it (`lock` again) and decides again. So a daemon deciding about a lead always counts
what every other daemon sent it: two never both send its last allowed message. One write per
lead and batch. An entry is [epoch seconds, channel, enrollment id, step id, sequence].
"""

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from nurture.store import bulk
from nurture.store.tables import LeadCap

Entry = list[Any]
table = LeadCap.__table__

_LOCK = {
    "postgresql": (
        "SELECT id, sent FROM lead_cap WHERE id = ANY(%(ids)b::integer[]) ORDER BY id FOR UPDATE"
    ),
    "sqlite": "SELECT id, sent FROM lead_cap WHERE id IN (SELECT value FROM json_each(?))",
}
_INSERT = {
    "postgresql": (
        "INSERT INTO lead_cap (id, sent) SELECT * FROM unnest(%(ids)b::integer[], "
        "%(sent)b::varchar[]) ORDER BY 1 "
        "ON CONFLICT (id) DO NOTHING RETURNING id"
    ),
    "sqlite": "INSERT INTO lead_cap (id, sent) VALUES (?, ?)",
}

_STATEMENTS = {"lock": _LOCK, "insert": _INSERT}


def lock(connection: Connection, leads: Iterable[int]) -> dict[int, list[Entry]]:
    """The entries of the leads that have a ledger row, each row locked until the commit."""
    ids = sorted(set(leads))
    if not ids:
        return {}
    given = {"ids": json.dumps(ids)} if connection.dialect.name == "sqlite" else {"ids": ids}
    found = _run(connection, "lock", **given)
    return {lead: json.loads(sent) for lead, sent in found}


def insert(connection: Connection, entries: Mapping[int, list[Entry]]) -> set[int]:
    """Make these leads' rows; the leads whose row another transaction made first (left as it is)."""
    if not entries:
        return set()
    leads = sorted(entries)
    texts = [_dumps(entries[lead]) for lead in leads]
    if connection.dialect.name == "sqlite":  # the write lock is held since `lock` read: no one
        connection.exec_driver_sql(_INSERT["sqlite"], list(zip(leads, texts, strict=True)))
        return set()
    made = {row[0] for row in _run(connection, "insert", ids=leads, sent=texts)}
    return set(leads) - made


def _dumps(entries: list[Entry]) -> str:
    """The JSON of a lead's entries; of a single one (a lead's first message, most of them)
    from its parts, the text it shares with the batch's other sends of that step made once."""
    if len(entries) != 1:
        return json.dumps(entries)
    at, channel, enrollment, step, sequence = entries[0]
    head, tail = _shared(channel, step, sequence)
    return f"[[{at!r}, {head}, {enrollment}, {tail}]]"


@lru_cache(maxsize=1024)
def _shared(channel: str, step: str, sequence: str) -> tuple[str, str]:
    return json.dumps(channel), json.dumps([step, sequence])[1:-1]


def write(connection: Connection, entries: Mapping[int, list[Entry]]) -> None:
    """Replace the entries of these leads (rows `lock` found and locked)."""
    rows = [{"_id": lead, "sent": _dumps(sent)} for lead, sent in sorted(entries.items())]
    bulk.update(connection, table, rows)


def _run(connection: Connection, name: str, **parameters: Any) -> list[Any]:
    """One statement at the driver (SQLite: one JSON parameter; Postgres: binary arrays)."""
    dialect = connection.dialect.name
    given: Any = tuple(parameters.values()) if dialect == "sqlite" else parameters
    return list(connection.exec_driver_sql(_STATEMENTS[name][dialect], given))
