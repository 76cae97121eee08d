"""Engagement events as `nurture logs --events` lists them: newest first, filtered as the log is."""

from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from nurture.errors import BadFilter
from nurture.insights.logs import LogFilter
from nurture.spec.diagnostics import did_you_mean
from nurture.store.tables import EngagementEvent, Lead, Sequence
from nurture.store.tables.engagement import KINDS

event = EngagementEvent.__table__


def check_kind(kind: str | None) -> str | None:
    """The kind, lower-cased, if an event can have it."""
    if kind is None:
        return None
    wanted = kind.strip().lower()
    if wanted not in KINDS:
        raise BadFilter(
            f"--status {kind!r} is not an engagement event{did_you_mean(wanted, KINDS)} "
            f"(one of: {', '.join(KINDS)})"
        )
    return wanted


def recent_events(session: Session, filters: LogFilter, limit: int = 50) -> list[dict[str, Any]]:
    """The newest `limit` engagement events that pass the filters (`status` is the kind)."""
    c, lead, sequence = event.c, Lead.__table__, Sequence.__table__
    wanted = [
        (filters.sequence_id, lambda v: c.sequence_id == v),
        (filters.step_id, lambda v: c.step_id == v),
        (filters.lead_id, lambda v: c.lead_id == v),
        (filters.status, lambda v: c.kind == v),
        (filters.since, lambda v: c.at >= v),
        (
            filters.funnel_id,
            lambda v: c.lead_id.in_(select(col(Lead.id)).where(col(Lead.funnel_id) == v)),
        ),
    ]
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
        .where(*(make(value) for value, make in wanted if value is not None))
        .order_by(c.at.desc(), c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in session.connection().execute(query)]
