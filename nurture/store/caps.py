"""The cap ledger: what each lead got lately, locked while the engine decides its next message.

    found = caps.take(connection, first)       # {lead: entries} of the rows that were there, locked
    caps.write(connection, changed)            # the rows `take` found

`take` is given, for each lead, the entries the engine decided as if the lead had none; a lead
without a row gets one holding them, and the rows that exist are locked until the commit and
read, for the engine to decide again on what they hold. On Postgres one statement a batch
makes and locks the rows (INSERT ... ON CONFLICT DO UPDATE ... WHERE false, in lead id order,
so two daemons never wait on each other in a cycle; the rows that exist are locked, not
written), and, when some existed, a second reads them: a row another daemon inserted
meanwhile is waited for, then locked and read like one that was there. On SQLite the write
lock BEGIN IMMEDIATE took already keeps everyone else out: `lock` reads, `insert` makes the
missing rows. So a daemon deciding about a lead
always counts what every other daemon sent it: two never both send its last allowed message.
At most one write per lead and batch after `take`. An entry is [epoch seconds, channel,
enrollment id, step id, sequence]."""

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

_TAKE = (  # a lead's first entries in a new row; an existing row locked (in id order), unchanged
    "INSERT INTO lead_cap AS c (id, sent) SELECT * FROM unnest(%(ids)b::integer[], "
    "%(sent)b::varchar[]) ORDER BY 1 "
    "ON CONFLICT (id) DO UPDATE SET sent = c.sent WHERE false RETURNING id"
)
_READ = {  # rows this transaction holds locked already
    "postgresql": "SELECT id, sent FROM lead_cap WHERE id = ANY(%(ids)b::integer[])",
}

_STATEMENTS = {"lock": _LOCK, "insert": _INSERT, "take": {"postgresql": _TAKE}, "read": _READ}


def take(connection: Connection, first: Mapping[int, list[Entry]]) -> dict[int, list[Entry]]:
    """Make the rows of the leads that have none, holding their `first` entries (what the
    engine decided for a lead without any); the entries of the leads that had a row, each row
    locked until the commit. On Postgres one statement makes and locks the rows in id order
    (two daemons never wait on each other in a cycle; a row another daemon makes meanwhile is
    waited for, then locked as one that was there), without writing the rows that exist; a
    second reads those (its snapshot is taken after the locks, so it sees what the other
    daemons committed), only when there are any."""
    if not first:
        return {}
    if connection.dialect.name == "sqlite":  # the write lock is held: no one else makes one
        found = lock(connection, first)
        insert(connection, {lead: sent for lead, sent in first.items() if lead not in found})
        return found
    leads = sorted(first)
    texts = [_dumps(first[lead]) for lead in leads]
    made = {lead for (lead,) in _run(connection, "take", ids=leads, sent=texts)}
    there = [lead for lead in leads if lead not in made]
    if not there:
        return {}
    return _loads(_run(connection, "read", ids=there))


def lock(connection: Connection, leads: Iterable[int]) -> dict[int, list[Entry]]:
    """The entries of the leads that have a ledger row, each row locked until the commit."""
    ids = sorted(set(leads))
    if not ids:
        return {}
    given = {"ids": json.dumps(ids)} if connection.dialect.name == "sqlite" else {"ids": ids}
    return _loads(_run(connection, "lock", **given))


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
    """The JSON of a lead's entries, each from its parts: the text an entry shares with the
    other sends of its step (its channel, step and sequence) made once."""
    return "[" + ", ".join(_entry_json(*entry) for entry in entries) + "]"


def _entry_json(at: float, channel: str, enrollment: int, step: str, sequence: str) -> str:
    head, tail = _shared(channel, step, sequence)
    return f"[{float(at)!r}, {head}, {int(enrollment)}, {tail}]"


def _loads(rows: Iterable[tuple[int, str]]) -> dict[int, list[Entry]]:
    """{lead: entries} of ledger rows, their JSON parsed in one call for the batch."""
    leads, texts = [], []
    for lead, sent in rows:
        leads.append(lead)
        texts.append(sent)
    return dict(zip(leads, json.loads("[" + ",".join(texts) + "]"), strict=True))


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
