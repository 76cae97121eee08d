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
    column("deleted_at"),
)
_version = table(
    "sequence_version", column("sequence_id"), column("version"), column("definition", JSON)
)
_assignment = table("funnel_assignment", column("sequence_id"), column("funnel_id"))
_funnel = table("funnel", column("id"), column("slug"))
_enrollment = table("enrollment", column("sequence_id"), column("status"))


def sequences(reader: "Reader") -> Sequence[Row]:
    """Every sequence, deleted ones included, with its current version's `definition`."""
    current = (_version.c.sequence_id == _sequence.c.id) & (
        _version.c.version == _sequence.c.current_version
    )
    query = select(*_sequence.c, _version.c.definition).join(_version, current)
    return reader.execute(query).all()


def funnel_slugs(reader: "Reader") -> dict[int, set[str]]:
    """The slugs of the funnels each sequence is assigned to."""
    query = select(_assignment.c.sequence_id, _funnel.c.slug).join(
        _funnel, _funnel.c.id == _assignment.c.funnel_id
    )
    found: dict[int, set[str]] = {}
    for sequence_id, slug in reader.execute(query):
        found.setdefault(sequence_id, set()).add(slug)
    return found


def in_flight(reader: "Reader", sequence_ids: Iterable[int]) -> dict[int, int]:
    """How many live enrollments (active, running, paused) each sequence has."""
    query = (
        select(_enrollment.c.sequence_id, func.count())
        .where(_enrollment.c.sequence_id.in_(list(sequence_ids)), _enrollment.c.status.in_(LIVE))
        .group_by(_enrollment.c.sequence_id)
    )
    return {sequence_id: count for sequence_id, count in reader.execute(query)}
