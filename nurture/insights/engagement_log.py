"""Engagement events as `nurture logs --events` lists them: newest first, filtered as the log is."""

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from nurture.insights.logs import LogFilter, conditions, known_value
from nurture.store.tables import EngagementEvent, Lead, Sequence
from nurture.store.tables.engagement import KINDS

event = EngagementEvent.__table__


def check_kind(kind: str | None) -> str | None:
    """The kind, lower-cased, if an event can have it."""
    return known_value(kind, KINDS, "an engagement event")


def recent_events(session: Session, filters: LogFilter, limit: int = 50) -> list[dict[str, Any]]:
    """The newest `limit` engagement events that pass the filters (`status` is the kind)."""
    c, lead, sequence = event.c, Lead.__table__, Sequence.__table__
    query = (
        select(
            c.id,
            c.at,
            c.kind,
            c.lead_id,
            lead.c.name.label("lead"),
            sequence.c.name.label("sequence"),
            c.step_id,
            c.execution_id,
            c.link,
            c.detail,
        )
        .join(lead, lead.c.id == c.lead_id)
        .outerjoin(sequence, sequence.c.id == c.sequence_id)
        .where(*conditions(filters, c, c.kind, c.at))
        .order_by(c.at.desc(), c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in session.connection().execute(query)]
