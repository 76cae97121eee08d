"""Engagement events recorded, each once, and the waits they end.

    record(connection, Happened(lead_id=7, kind="clicked", at=now, key="clicked:41:0", ...))

Every event names the execution it belongs to (a click, an open, a delivery, a bounce: the
message's; a reply or a conversion: the last message the lead got). An event a lead's
enrollment waits for (`wait_for: {event: reply}`) makes that enrollment due now: the daemon
runs its wait step at its next poll, and the next steps' conditions see the event.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.dialects import postgresql, sqlite

from nurture.rules.engagement import WAITED, Event, Scoring, score
from nurture.store.tables import EngagementEvent, Enrollment, Execution, SequenceVersion

event_table = EngagementEvent.__table__
execution = Execution.__table__
enrollment = Enrollment.__table__
ENDS_WAIT = {kind: event for event, kind in WAITED.items()}
"""The event kind that ends a `wait_for` wait, and the wait's name for it."""


@dataclass(frozen=True)
class Happened:
    """An event to record: whose, what, when, and (where known) its execution and once-key."""

    lead_id: int
    kind: str
    at: datetime
    key: str | None = None
    execution: Any = None  # an execution row (id, enrollment_id, sequence_id, step_id) or None
    link: str | None = None
    detail: dict[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        found = self.execution
        return {
            "key": self.key,
            "lead_id": self.lead_id,
            "kind": self.kind,
            "at": self.at,
            "execution_id": found.id if found is not None else None,
            "enrollment_id": found.enrollment_id if found is not None else None,
            "sequence_id": found.sequence_id if found is not None else None,
            "step_id": found.step_id if found is not None else None,
            "link": self.link,
            "detail": self.detail,
        }


def record(connection: Connection, happened: Happened) -> bool:
    """Record the event unless its key was recorded before; whether it is new. An event a
    wait waits for wakes the lead's waiting enrollments."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(event_table).values(happened.row())
    statement = statement.on_conflict_do_nothing(index_elements=["key"])
    if connection.execute(statement.returning(event_table.c.id)).first() is None:
        return False  # recorded before
    if happened.kind in ENDS_WAIT:
        wake(connection, happened.lead_id, happened.kind, happened.at)
    return True


def last_message(
    connection: Connection, lead_id: int, action_types: tuple[str, ...] = ()
) -> Row | None:
    """The last execution that sent the lead a message (of these action types, if given)."""
    c = execution.c
    query = select(c.id, c.enrollment_id, c.sequence_id, c.step_id).where(
        c.lead_id == lead_id, c.status == "sent"
    )
    if action_types:
        query = query.where(c.action_type.in_(action_types))
    return connection.execute(query.order_by(c.id.desc()).limit(1)).first()


def replied(
    connection: Connection,
    lead_id: int,
    now: datetime,
    channel: str,
    text: str | None,
    answered: Row | None = None,
) -> bool:
    """A message from the lead: a reply to `answered` (the message it names, as an email's
    In-Reply-To does), else to the last message it got on that channel (or any)."""
    types = {"sms": ("send_sms",), "whatsapp": ("send_whatsapp_message",), "email": ("send_email",)}
    answered = (
        answered
        or last_message(connection, lead_id, types.get(channel, ()))
        or last_message(connection, lead_id)
    )
    detail = {"channel": channel} | ({"text": text[:200]} if text else {})
    return record(connection, Happened(lead_id, "replied", now, execution=answered, detail=detail))


def converted(connection: Connection, lead_id: int, now: datetime) -> bool:
    """The lead converted: once per lead and time."""
    key = f"converted:{lead_id}:{now.isoformat()}"
    answered = last_message(connection, lead_id)
    return record(connection, Happened(lead_id, "converted", now, key, answered))


def wake(connection: Connection, lead_id: int, kind: str, now: datetime) -> list[int]:
    """Make due now the lead's active enrollments whose wait step waits for `kind`; their ids."""
    c, version = enrollment.c, SequenceVersion.__table__
    query = (
        select(c.id, c.step_id, version.c.definition)
        .join(version, (version.c.sequence_id == c.sequence_id) & (version.c.version == c.version))
        .where(c.lead_id == lead_id, c.status == "active", c.next_run_at > now)
    )
    waiting = [row.id for row in connection.execute(query) if _waits_for(row, ENDS_WAIT[kind])]
    if waiting:
        connection.execute(
            update(enrollment)
            .where(c.id.in_(waiting), c.status == "active", c.next_run_at > now)
            .values(next_run_at=now, updated_at=now)
        )
    return waiting


def _waits_for(row: Row, event: str) -> bool:
    """Whether the enrollment's current step (in its version's definition) waits for `event`."""
    steps = (row.definition or {}).get("steps") or []
    step = next((s for s in steps if s.get("id") == row.step_id), None)
    wait_for = (step or {}).get("wait_for") or {}
    return wait_for.get("event") == event


def events_of(connection: Connection, lead_id: int) -> list[Row]:
    """Every engagement event of a lead, oldest first."""
    query = select(event_table).where(event_table.c.lead_id == lead_id)
    return list(connection.execute(query.order_by(event_table.c.at, event_table.c.id)))


def summary(
    connection: Connection, lead_id: int, now: datetime, scoring: Scoring | None = None
) -> dict[str, Any]:
    """A lead's engagement score at `now` and its events (what `leads show` and the API add)."""
    rows = events_of(connection, lead_id)
    facts = [Event(row.kind, row.at, row.step_id, row.enrollment_id) for row in rows]
    return {
        "engagement_score": score(facts, now, scoring),
        "engagement": [event_dict(row) for row in rows],
    }


def event_dict(row: Row) -> dict[str, Any]:
    """An event as people read it: what, when, from which step of which message."""
    keys = (
        "kind",
        "at",
        "sequence_id",
        "step_id",
        "enrollment_id",
        "execution_id",
        "link",
        "detail",
    )
    return {key: getattr(row, key) for key in keys}
