"""The outbox, read back: what the outbox channel kept instead of sending, newest first.

filters = OutboxFilter(lead_id=7, channel="whatsapp")
messages = recent(session, filters, limit=50)
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from nurture.channels import KINDS
from nurture.errors import BadFilter
from nurture.spec.diagnostics import did_you_mean
from nurture.store.tables import Execution, Lead, OutboxMessage, Sequence

outbox = OutboxMessage.__table__


@dataclass(frozen=True)
class OutboxFilter:
    """Which kept messages to show; None matches everything."""

    lead_id: int | None = None
    channel: str | None = None
    since: datetime | None = None


def check_channel(channel: str | None) -> str | None:
    """The kind of message, lower-cased, if the outbox can hold it (whatsapp, sms, email...)."""
    if channel is None:
        return None
    wanted = channel.strip().lower()
    if wanted not in KINDS:
        raise BadFilter(
            f"--channel {channel!r} is not a kind of message{did_you_mean(wanted, KINDS)} "
            f"(one of: {', '.join(KINDS)})",
            field="--channel",
        )
    return wanted


def _conditions(filters: OutboxFilter) -> list[Any]:
    c, run = outbox.c, Execution.__table__.c
    wanted = [
        (filters.lead_id, lambda v: run.lead_id == v),
        (filters.channel, lambda v: c.channel == v),
        (filters.since, lambda v: c.created_at >= v),
    ]
    return [make(value) for value, make in wanted if value is not None]


def recent(session: Session, filters: OutboxFilter, limit: int = 50) -> list[dict[str, Any]]:
    """The newest `limit` kept messages that pass the filters, with their lead, sequence and step."""
    c, run = outbox.c, Execution.__table__.c
    lead, sequence = Lead.__table__.c, Sequence.__table__.c
    query = (
        select(
            c.id,
            c.created_at,
            c.channel,
            c.recipient,
            c.subject,
            c.body,
            run.lead_id,
            lead.name.label("lead"),
            sequence.name.label("sequence"),
            run.step_id,
            c.execution_id,
        )
        .select_from(outbox)
        .outerjoin(Execution.__table__, run.id == c.execution_id)
        .outerjoin(Lead.__table__, lead.id == run.lead_id)
        .outerjoin(Sequence.__table__, sequence.id == run.sequence_id)
        .where(*_conditions(filters))
        .order_by(c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in session.connection().execute(query)]
