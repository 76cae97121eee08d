"""What leads do with what they get: deliveries, reads, clicks, opens, replies, bounces, conversions."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field

from nurture.store.tables.base import Stored, utc_column

KINDS = ("delivered", "read", "clicked", "opened", "replied", "bounced", "converted")


class EngagementEvent(Stored, table=True):
    """One thing a lead did (or a provider reported) about a message: kind, when, which execution.

    `key` makes an event happen once (`clicked:EXECUTION:LINK`, `delivered:EXECUTION`, the
    provider's id of a reply): a repeat (a second click, a retried callback) is dropped.
    Sequence, step and enrollment are the execution's, kept here so figures and conditions read
    this table alone.
    """

    __tablename__ = "engagement_event"
    __table_args__ = (
        # Conditions, scores and `explain`: a lead's events, oldest first.
        Index("ix_engagement_event_lead", "lead_id", "at"),
        # `nurture stats`: per sequence and step, each kind's executions and leads.
        Index(
            "ix_engagement_event_steps",
            "sequence_id",
            "step_id",
            "kind",
            "execution_id",
            "enrollment_id",
            "at",
        ),
    )

    # A log: no foreign keys (as the execution log), written next to what it records.
    id: int = Field(default=None, primary_key=True)
    key: str | None = Field(default=None, unique=True, max_length=200)
    lead_id: int
    kind: str = Field(max_length=20)
    at: datetime = utc_column()
    execution_id: int | None = None
    enrollment_id: int | None = None
    sequence_id: int | None = None
    step_id: str | None = Field(default=None, max_length=100)
    link: str | None = None
    """A click's target URL."""
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
