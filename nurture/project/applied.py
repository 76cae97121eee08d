"""What the store holds of the project, as `plan` compares it with the files: each sequence's
applied definition, the funnels it is assigned to, its enrollments in flight.

Read with SQLAlchemy Core on table clauses naming only the columns a plan reads: no ORM, no
SQLModel (their import is a third of `nurture plan`'s start-up). A session or a connection
reads them alike.
"""

from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Float,
    Row,
    column,
    func,
    select,
    table,
)

from nurture.project.experiments import Canary
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
    column("canary_version"),
    column("canary_share", Float),
    column("canary_started_at", DateTime),
)
_version = table(
    "sequence_version",
    column("sequence_id"),
    column("version"),
    column("definition", JSON),
    column("fingerprint"),
)
_assignment = table(
    "funnel_assignment", column("sequence_id"), column("funnel_id"), column("weight")
)
_funnel = table("funnel", column("id"), column("slug"))
_enrollment = table(
    "enrollment",
    column("sequence_id"),
    column("status"),
    column("step_id"),
    column("variants", JSON),
)


def sequences(reader: "Reader") -> Sequence[Row]:
    """Every sequence, deleted ones included, with its current version's `definition`."""
    current = (_version.c.sequence_id == _sequence.c.id) & (
        _version.c.version == _sequence.c.current_version
    )
    query = select(*_sequence.c, _version.c.definition).join(_version, current)
    return reader.execute(query).all()


def funnel_slugs(reader: "Reader") -> dict[int, dict[str, int | None]]:
    """The funnels each sequence is assigned to, by slug, with its weight in the funnel's split
    (None: the funnel does not split)."""
    query = select(_assignment.c.sequence_id, _funnel.c.slug, _assignment.c.weight).join(
        _funnel, _funnel.c.id == _assignment.c.funnel_id
    )
    found: dict[int, dict[str, int | None]] = {}
    for sequence_id, slug, weight in reader.execute(query):
        found.setdefault(sequence_id, {})[slug] = weight
    return found


def canaries(reader: "Reader", rows: Iterable[Row]) -> dict[int, Canary]:
    """The canary of every sequence that has one, by sequence id."""
    having = {row.id: row for row in rows if row.canary_version is not None}
    if not having:
        return {}
    query = select(_version.c.sequence_id, _version.c.version, _version.c.fingerprint).where(
        _version.c.sequence_id.in_(list(having))
    )
    prints = {(sequence_id, version): fp for sequence_id, version, fp in reader.execute(query)}
    found = {}
    for sequence_id, row in having.items():
        since = row.canary_started_at
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        version = row.canary_version
        found[sequence_id] = Canary(
            version, row.canary_share or 0.0, since, prints[(sequence_id, version)]
        )
    return found


def in_flight(reader: "Reader", sequence_ids: Iterable[int]) -> dict[int, int]:
    """How many live enrollments (active, running, paused) each sequence has."""
    query = (
        select(_enrollment.c.sequence_id, func.count())
        .where(_enrollment.c.sequence_id.in_(list(sequence_ids)), _enrollment.c.status.in_(LIVE))
        .group_by(_enrollment.c.sequence_id)
    )
    return {sequence_id: count for sequence_id, count in reader.execute(query)}


def live_variants(reader: "Reader", sequence_id: int) -> Sequence[Row]:
    """The step and the variants drawn (`{step_id: [variant, version]}`) of each live
    enrollment of a sequence that drew any."""
    query = select(_enrollment.c.step_id, _enrollment.c.variants).where(
        _enrollment.c.sequence_id == sequence_id,
        _enrollment.c.status.in_(LIVE),
        _enrollment.c.variants.is_not(None),
    )
    return reader.execute(query).all()
