"""The cap ledger: what each lead got lately, locked while the engine decides its next message.

    found = caps.take(connection, first, counting)   # {lead: entries} left to the engine, locked
    caps.write(connection, changed)                  # the rows `take` found

`take` is given, for each lead, the entries the engine decided as if the lead had none; a lead
without a row gets one holding them, and the rows that exist are locked until the commit. On
Postgres one statement a batch makes the rows and locks the others (INSERT ... ON CONFLICT
DO UPDATE, in lead id order, so two daemons never wait on each other in a cycle), and it
appends a lead's one new entry to the row there when the caps (`counting`, as numbers) allow
it on what the row holds: none of its entries is old enough to drop, none counted this step
already, and none holds the message (what `Caps.allows` decides, in SQL). That is a lead's
usual second message: one write, no read. The rows it could not decide on are left as they
were, locked, and a second statement reads them for the engine to decide again (its
snapshot follows the locks: a row another daemon made or wrote meanwhile is waited for, then
read as it committed). On SQLite the write lock BEGIN IMMEDIATE took already keeps everyone
else out: `lock` reads, `insert` makes the missing rows. So a daemon deciding about a lead
always counts what every other daemon sent it: two never both send its last allowed message.
At most one write per lead and batch after `take`. An entry is [epoch seconds, channel,
enrollment id, step id, sequence]."""

import json
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

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


class Counting(NamedTuple):
    """The caps as the store applies them at a moment (times in seconds since the epoch)."""

    now: float
    cutoff: float
    """Entries this old or older count no more: a row holding one is left to the engine."""
    gap: float | None
    """The quiet gap after any message, or None."""
    limits: tuple[tuple[str | None, int, float], ...]
    """(channel, or None for all, count, window) of every cap."""


# A row's entries as text, read without parsing its JSON (which costs the server more than
# the rest of the statement): the entries are kept oldest first, `], [` between two, and a
# step id is a slug, so the last entry is what follows the last `], [` (unless a sequence name
# holds one: then that piece does not read as an entry, and the engine decides), its time
# before its first comma. The new entry (`excluded`) is one this module wrote.
_LAST = "split_part(c.sent, '], [', -1)"  # a negative field: Postgres 14 or later
_FIRST_AT = "ltrim(split_part(c.sent, ',', 1), '[')::float8"
_LAST_AT = f"ltrim(split_part({_LAST}, ',', 1), '[')::float8"
_ENTRIES = "((length(c.sent) - length(replace(c.sent, '], [', ''))) / 4 + 1)"  # or more
_CHANNEL = "split_part(excluded.sent, '\"', 2)"
_KEY = (  # `, enrollment, "step", `: in the row when this step counted already
    "', ' || split_part(excluded.sent, ', ', 3) || ', ' || split_part(excluded.sent, ', ', 4) "
    "|| ', '"
)
_READS = "('\"sms\"', '\"whatsapp\"', '\"email\"')"


@lru_cache(maxsize=16)
def _take(gap: bool, named: tuple[bool, ...]) -> str:
    """A lead's first entries in a new row; an existing row locked (in id order), and its
    lead's one new entry appended when the caps allow it there (what Caps.allows decides,
    with the row's newest entry and its number of entries, or more); else the row is left as
    it was. Caps of this shape: with a gap or not, and whether each limit is a channel's."""
    checks = [
        f"{_FIRST_AT} > %(cutoff)s",  # else the engine drops the entries that count no more
        f"{_LAST_AT} <= %(now)s",  # so the entries stay in time order
    ]
    if gap:
        checks.append(f"{_LAST_AT} <= %(gap)s")
    for n, channel in enumerate(named):
        room = f"{_ENTRIES} < %(count{n})s OR {_LAST_AT} <= %(since{n})s"
        checks.append(f"({_CHANNEL} <> %(channel{n})s OR {room})" if channel else f"({room})")
    allowed = "\n    AND ".join(checks)
    return (  # CASE: the times are read only from a row that reads as entries
        "INSERT INTO lead_cap AS c (id, sent) SELECT * FROM unnest(%(ids)b::integer[], "
        "%(sent)b::varchar[]) ORDER BY 1\n"
        "ON CONFLICT (id) DO UPDATE SET sent = left(c.sent, -1) || ', ' || substr(excluded.sent, 2)\n"
        "WHERE CASE WHEN c.sent LIKE '[[%%' AND NOT (excluded.id = ANY(%(several)s::integer[]))\n"
        f"    AND strpos(c.sent, {_KEY}) = 0 AND split_part({_LAST}, ', ', 2) IN {_READS}\n"
        f"  THEN {allowed}\n"
        "  ELSE false END\n"
        "RETURNING id"
    )


def _counted(counting: Counting) -> dict[str, Any]:
    """`_take`'s parameters: each window's start computed as Caps.allows does."""
    now = counting.now
    given: dict[str, Any] = {"now": now, "cutoff": counting.cutoff}
    if counting.gap is not None:
        given["gap"] = now - counting.gap
    for n, (channel, count, window) in enumerate(counting.limits):
        given |= {f"since{n}": now - window, f"count{n}": count}
        if channel is not None:
            given[f"channel{n}"] = channel
    return given


_READ = {  # rows this transaction holds locked already
    "postgresql": "SELECT id, sent FROM lead_cap WHERE id = ANY(%(ids)b::integer[])",
}

_STATEMENTS = {"lock": _LOCK, "insert": _INSERT, "read": _READ}


def take(
    connection: Connection,
    first: Mapping[int, list[Entry]],
    counting: Counting,
    several: Collection[int] = (),
) -> dict[int, list[Entry]]:
    """Make the rows of the leads that have none, holding their `first` entries (what the
    engine decided for a lead without any); the entries of the leads left to the engine, each
    row locked until the commit. On Postgres one statement makes and locks the rows in id order
    (two daemons never wait on each other in a cycle; a row another daemon makes meanwhile is
    waited for, then locked as one that was there) and appends a lead's one first entry to its
    row when `counting` allows it there (not for the leads with `several` messages); a second
    reads the rows it left (its snapshot is taken after the locks, so it sees what the other
    daemons committed), only when there are any. On SQLite every row there is the engine's to
    decide on."""
    if not first:
        return {}
    if connection.dialect.name == "sqlite":  # the write lock is held: no one else makes one
        found = lock(connection, first)
        insert(connection, {lead: sent for lead, sent in first.items() if lead not in found})
        return found
    leads = sorted(first)
    texts = [_dumps(first[lead]) for lead in leads]
    named = tuple(name is not None for name, *_ in counting.limits)
    statement = _take(counting.gap is not None, named)
    given = {"ids": leads, "sent": texts, "several": sorted(several)} | _counted(counting)
    done = {lead for (lead,) in connection.exec_driver_sql(statement, given)}
    there = [lead for lead in leads if lead not in done]
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


def _at(entry: Entry) -> float:
    return entry[0]


@lru_cache(maxsize=1024)
def _shared(channel: str, step: str, sequence: str) -> tuple[str, str]:
    return json.dumps(channel), json.dumps([step, sequence])[1:-1]


def write(connection: Connection, entries: Mapping[int, list[Entry]]) -> None:
    """Replace the entries of these leads (rows `lock` found and locked), oldest first."""
    rows = [
        {"_id": lead, "sent": _dumps(sorted(sent, key=_at))}
        for lead, sent in sorted(entries.items())
    ]
    bulk.update(connection, table, rows)


def _run(connection: Connection, name: str, **parameters: Any) -> list[Any]:
    """One statement at the driver (SQLite: one JSON parameter; Postgres: binary arrays)."""
    dialect = connection.dialect.name
    given: Any = tuple(parameters.values()) if dialect == "sqlite" else parameters
    return list(connection.exec_driver_sql(_STATEMENTS[name][dialect], given))
