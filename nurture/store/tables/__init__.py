"""Tables. Times are UTC. A sequence row is the current state; every applied version is kept.

One module per concept; every table is importable from here, and importing this package
puts them all on `SQLModel.metadata`.
"""

from typing import Any

from nurture.store.tables.access import ApiToken, IngestKey
from nurture.store.tables.actions import Appointment, Notification, Task
from nurture.store.tables.activity import Activity
from nurture.store.tables.base import Stored, UTCDateTime, utc_column
from nurture.store.tables.caps import LeadCap
from nurture.store.tables.channels import ChannelSlot, OutboxMessage, ProviderCallback
from nurture.store.tables.engagement import EngagementEvent
from nurture.store.tables.engine import Enrollment, Execution, Worker
from nurture.store.tables.leads import (
    ConsentEvent,
    InboundMessage,
    Lead,
    LeadKey,
    LeadMerge,
    MatchCandidates,
    MatchDecision,
)
from nurture.store.tables.project import Funnel, FunnelAssignment, Sequence, SequenceVersion, Step

__all__ = [
    "HAND_MADE_INDEXES",
    "Activity",
    "ApiToken",
    "Appointment",
    "ChannelSlot",
    "ConsentEvent",
    "EngagementEvent",
    "Enrollment",
    "Execution",
    "Funnel",
    "FunnelAssignment",
    "InboundMessage",
    "IngestKey",
    "Lead",
    "LeadCap",
    "LeadKey",
    "LeadMerge",
    "MatchCandidates",
    "MatchDecision",
    "Notification",
    "OutboxMessage",
    "ProviderCallback",
    "Sequence",
    "SequenceVersion",
    "Step",
    "Stored",
    "Task",
    "UTCDateTime",
    "Worker",
    "include_object",
    "utc_column",
]

HAND_MADE_INDEXES = frozenset(
    {"ix_enrollment_completion", "ix_enrollment_completion_version", "ix_execution_reasons"}
    | {"ix_lead_name_lower"}  # migration 0016: lower(name), a prefix search's range
)
"""Indexes migrations 0005 and 0016 write per dialect (they differ, or exist on SQLite only): not
in the tables below, so autogenerate must leave them alone (see include_object)."""


def include_object(_object: Any, name: str | None, type_: str, *_: Any) -> bool:
    """Alembic's autogenerate filter: everything but the hand-made indexes."""
    return not (type_ == "index" and name in HAND_MADE_INDEXES)
