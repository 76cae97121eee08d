"""The cap ledger: what each lead got lately, locked while the engine decides its next message.

    sent = caps.lock(connection, lead_ids)    # {lead: [entry, ...]}, rows locked until commit
    caps.write(connection, {lead: entries})

`lock` is one upsert over the batch's leads, in id order: it makes the rows that do not exist
yet and locks every one (Postgres: the upsert's row lock; SQLite: the write lock BEGIN
IMMEDIATE took), returning what each holds. A daemon deciding about the same lead waits for
this transaction to commit and then reads what it wrote: two daemons never both send a lead's
last allowed message. An entry is [epoch seconds, channel, enrollment id, step id, sequence].
"""

import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from sqlalchemy import ARRAY, Connection, Integer, TextClause, bindparam, text

from nurture.store import bulk
from nurture.store.tables import LeadCap

Entry = list[Any]

_LOCK = {
    "postgresql": (
        "INSERT INTO lead_cap (id, sent) SELECT id, '[]' FROM unnest(:ids) AS v(id) ORDER BY id "
        "ON CONFLICT (id) DO UPDATE SET sent = lead_cap.sent RETURNING id, sent"
    ),
    "sqlite": (
        "INSERT INTO lead_cap (id, sent) SELECT value, '[]' FROM json_each(:ids) WHERE true "
        "ON CONFLICT (id) DO UPDATE SET sent = lead_cap.sent RETURNING id, sent"
    ),
}


def lock(connection: Connection, leads: Iterable[int]) -> dict[int, list[Entry]]:
    """Each lead's entries, its ledger row locked (made when missing) until the commit."""
    ids = sorted(set(leads))
    if not ids:
        return {}
    dialect = connection.dialect.name
    given = json.dumps(ids) if dialect == "sqlite" else ids
    found = connection.execute(_sql(dialect), {"ids": given})
    return {row.id: json.loads(row.sent) for row in found}


def write(connection: Connection, entries: Mapping[int, list[Entry]]) -> None:
    """Replace the entries of these leads (their rows are locked by `lock`)."""
    rows = [{"_id": lead, "sent": json.dumps(sent)} for lead, sent in sorted(entries.items())]
    bulk.update(connection, LeadCap.__table__, rows)


@cache
def _sql(dialect: str) -> TextClause:
    if dialect == "postgresql":
        return text(_LOCK[dialect]).bindparams(bindparam("ids", type_=ARRAY(Integer)))
    return text(_LOCK[dialect])
