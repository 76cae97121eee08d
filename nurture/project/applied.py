"""What the store holds of the project, as `plan` compares it with the files: each sequence's
applied definition, the funnels it is assigned to, its enrollments in flight.

Read with SQLAlchemy Core on table clauses naming only the columns a plan reads: no ORM, no
SQLModel (their import is a third of `nurture plan`'s start-up). A session or a connection
reads them alike.
"""

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Boolean, Connection, Row, column, func, select, table

from nurture.rules.steps import LIVE
from nurture.store.utc import UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    Reader = Session | Connection

_sequence = table(
    "sequence",
    column("id"),
    column("name"),
    column("slug"),
    column("active", Boolean),
    column("current_version"),
    column("fingerprint"),
    column("source_path"),
    column("deleted_at", UTCDateTime()),
    column("canary_version"),
    column("canary_share"),
    column("canary_started_at", UTCDateTime()),
)
_version = table(
    "sequence_version", column("sequence_id"), column("version"), column("definition", JSON)
)
_assignment = table(
    "funnel_assignment", column("sequence_id"), column("funnel_id"), column("weight")
)
_funnel = table("funnel", column("id"), column("slug"))
_enrollment = table("enrollment", column("sequence_id"), column("status"))


def sequences(reader: "Reader") -> Sequence[Row]:
    """Every sequence, deleted ones included, with its current version's `definition`."""
    current = (_version.c.sequence_id == _sequence.c.id) & (
        _version.c.version == _sequence.c.current_version
    )
    query = select(*_sequence.c, _version.c.definition).join(_version, current)
    return reader.execute(query).all()


def funnel_weights(reader: "Reader") -> dict[int, dict[str, int | None]]:
    """Each sequence's funnels by slug, with its weight in the funnel's split (None: none)."""
    query = select(_assignment.c.sequence_id, _funnel.c.slug, _assignment.c.weight).join(
        _funnel, _funnel.c.id == _assignment.c.funnel_id
    )
    found: dict[int, dict[str, int | None]] = {}
    for sequence_id, slug, weight in reader.execute(query):
        found.setdefault(sequence_id, {})[slug] = weight
    return found


def in_flight(reader: "Reader", sequence_ids: Iterable[int]) -> dict[int, int]:
    """How many live enrollments (active, running, paused) each sequence has."""
    query = (
        select(_enrollment.c.sequence_id, func.count())
        .where(_enrollment.c.sequence_id.in_(list(sequence_ids)), _enrollment.c.status.in_(LIVE))
        .group_by(_enrollment.c.sequence_id)
    )
    return {sequence_id: count for sequence_id, count in reader.execute(query)}
