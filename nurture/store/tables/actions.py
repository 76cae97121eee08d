"""What steps leave for the coach: tasks, appointments and notifications."""

from datetime import datetime

from sqlalchemy import Index, text
from sqlmodel import Field

from nurture.store.tables.base import Stored, utc_column


class Task(Stored, table=True):
    __tablename__ = "task"

    id: int = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    execution_id: int | None = Field(default=None, foreign_key="execution.id", unique=True)
    title: str
    description: str | None = None
    assignee: str | None = Field(default=None, max_length=200)
    priority: str = Field(default="normal", max_length=10)
    due_at: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()
    done_at: datetime | None = utc_column(nullable=True)


BOOKED = text("status = 'booked'")


class Appointment(Stored, table=True):
    """A call with the coach: booked at a slot, offered (the lead picks one), or done.

    status: offered (no slot yet: the lead's booking link), booked, attended, no_show,
    cancelled, unbooked (no free slot was left), conflict (a fixed time already taken).
    No two booked appointments of one coach share a start (`uq_appointment_slot`): whatever
    the number of daemons and servers, the store refuses the second.
    `uid` and `revision` are the invitation's iCalendar UID and SEQUENCE.
    """

    __tablename__ = "appointment"
    __table_args__ = (
        Index(
            "uq_appointment_slot",
            "coach",
            "starts_at",
            unique=True,
            sqlite_where=BOOKED,
            postgresql_where=BOOKED,
        ),
    )

    id: int = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    execution_id: int | None = Field(default=None, foreign_key="execution.id", unique=True)
    enrollment_id: int | None = Field(default=None, index=True)
    title: str
    starts_at: datetime | None = utc_column(nullable=True)
    duration_minutes: int = 30
    location: str | None = None
    notes: str | None = None
    created_at: datetime = utc_column()
    status: str = Field(default="booked", max_length=20)
    mode: str = Field(default="fixed", max_length=10)
    coach: str = Field(default="coach", max_length=100)
    uid: str | None = Field(default=None, max_length=200)
    revision: int = 0
    updated_at: datetime | None = utc_column(nullable=True)
    synced_revision: int | None = None
    """The revision the coach's CalDAV calendar holds (None: not written yet)."""
    invited_revision: int | None = None
    """The revision the lead's last invitation email carried (None: none sent)."""


class Notification(Stored, table=True):
    """An internal note for the coach: a send_notification step's, or a lead's reply.

    status: sent (delivered when its step ran, or kept in the store only), pending (waits for
    the coach's working hours, or for the daemon: `deliver_at`), sending (claimed by a daemon
    just before its provider call), failed, unknown (a daemon stopped during the call: never
    sent twice). kind: step, reply.
    """

    __tablename__ = "notification"
    __table_args__ = (
        Index(
            "ix_notification_pending",
            "deliver_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: int = Field(default=None, primary_key=True)
    lead_id: int | None = Field(default=None, foreign_key="lead.id", index=True)
    execution_id: int | None = Field(default=None, foreign_key="execution.id", unique=True)
    message: str
    channel: str | None = Field(default=None, max_length=100)
    urgent: bool = False
    created_at: datetime = utc_column()
    read_at: datetime | None = utc_column(nullable=True)
    kind: str = Field(default="step", max_length=20)
    subject: str | None = Field(default=None, max_length=300)
    status: str = Field(default="sent", max_length=20)
    deliver_at: datetime | None = utc_column(nullable=True)
    delivered_at: datetime | None = utc_column(nullable=True)
    attempts: int = 0
    error: str | None = None
    lease_expires_at: datetime | None = utc_column(nullable=True)
