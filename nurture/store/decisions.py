"""Match decisions' candidate lists, stored once per distinct list (migration 0007).

Leads of a funnel mostly come out of matching the same way (the same candidates, the same
checks), so a list is kept once in `match_candidates` under the SHA-256 of its JSON, and a
decision names it by `candidates_id`: an import of 100,000 leads stores a handful of lists,
not 100,000 copies.

    decision["candidates_id"] = decisions.candidates_id(connection, candidates)
    listed = decisions.candidates_of(connection, decision_row)
"""

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from nurture.store.tables import MatchCandidates, MatchDecision

table = MatchCandidates.__table__


def candidates_id(
    connection: Connection, candidates: list[dict[str, Any]], known: dict[str, int] | None = None
) -> int:
    """The id of this candidate list, stored now if no decision had it yet.

    `known` (digest to id) saves the lookups of lists this transaction has seen already.
    Safe with concurrent writers: a second insert of the same list waits for the first and
    then does nothing (ON CONFLICT on the digest), and the read after it sees the stored row.
    """
    digest = hashlib.sha256(json.dumps(candidates).encode()).hexdigest()
    if known is not None and digest in known:
        return known[digest]
    query = select(table.c.id).where(table.c.digest == digest)
    found = connection.execute(query).scalar()
    if found is None:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table).values(digest=digest, candidates=candidates)
        connection.execute(statement.on_conflict_do_nothing(index_elements=["digest"]))
        found = connection.execute(query).scalar_one()
    if known is not None:
        known[digest] = found
    return found


def candidates_of(connection: Connection, decision: MatchDecision) -> list[dict[str, Any]]:
    """Every candidate of the decision and its checks (inline in decisions made before 0007)."""
    if decision.candidates_id is None:
        return decision.candidates or []
    query = select(table.c.candidates).where(table.c.id == decision.candidates_id)
    return connection.execute(query).scalar_one()
