"""Tables. Times are UTC. A sequence row is the current state; every applied version is kept."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, TypeDecorator, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# Named constraints, so later migrations can drop them (SQLite rebuilds tables by name).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


HAND_MADE_INDEXES = frozenset(
    {"ix_enrollment_completion", "ix_enrollment_completion_version", "ix_execution_reasons"}
)
"""Indexes migration 0005 writes per dialect (they differ, or exist on SQLite only): not
in the tables below, so autogenerate must leave them alone (see include_object)."""


def include_object(_object: Any, name: str | None, type_: str, *_: Any) -> bool:
    """Alembic's autogenerate filter: everything but the hand-made indexes."""
    return not (type_ == "index" and name in HAND_MADE_INDEXES)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which keeps no zone) as on Postgres."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value} given to the store: times are UTC-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_column(nullable: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))


class Sequence(SQLModel, table=True):
    __tablename__ = "sequence"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    slug: str = Field(unique=True, index=True, max_length=200)
    description: str = ""
    category: str = Field(max_length=40)
    active: bool = True
    priority: int = 0
    current_version: int = 1
    fingerprint: str = Field(max_length=64)
    source_path: str | None = Field(default=None, max_length=500)
    created_at: datetime = _utc_column()
    updated_at: datetime = _utc_column()
    deleted_at: datetime | None = _utc_column(nullable=True)


class SequenceVersion(SQLModel, table=True):
    __tablename__ = "sequence_version"
    __table_args__ = (UniqueConstraint("sequence_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    sequence_id: int = Field(foreign_key="sequence.id", index=True)
    version: int
    fingerprint: str = Field(max_length=64)
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    source_path: str | None = Field(default=None, max_length=500)
    applied_at: datetime = _utc_column()


class Step(SQLModel, table=True):
    """A step of one sequence version; `step_id` is the stable identity across versions."""

    __tablename__ = "step"
    __table_args__ = (
        UniqueConstraint("version_id", "step_id"),
        UniqueConstraint("version_id", "position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="sequence_version.id", index=True)
    position: int
    step_id: str = Field(max_length=100)
    name: str = Field(max_length=200)
    action_type: str = Field(max_length=40)
    action_config: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    delay_seconds: int = 0
    conditions: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    active: bool = True


class Funnel(SQLModel, table=True):
    """A lead source: a landing page, a form, an ad campaign."""

    __tablename__ = "funnel"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    slug: str = Field(unique=True, index=True, max_length=200)
    created_at: datetime = _utc_column()


class FunnelAssignment(SQLModel, table=True):
    __tablename__ = "funnel_assignment"

    funnel_id: int = Field(foreign_key="funnel.id", primary_key=True)
    sequence_id: int = Field(foreign_key="sequence.id", primary_key=True, index=True)
    created_at: datetime = _utc_column()


class Lead(SQLModel, table=True):
    """A person a funnel brought in; email and phone are normalised (E.164)."""

    __tablename__ = "lead"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str | None = Field(default=None, unique=True, max_length=200)
    name: str = Field(max_length=200)
    first_name: str = Field(max_length=100)
    email: str | None = Field(default=None, index=True, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    source: str | None = Field(default=None, max_length=100)
    status: str | None = Field(default=None, max_length=100)
    temperature: str | None = Field(default=None, max_length=50)
    score: int = 0
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    timezone: str | None = Field(default=None, max_length=64)
    funnel_id: int | None = Field(default=None, foreign_key="funnel.id", index=True)
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    opted_out: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    last_inbound_at: datetime | None = _utc_column(nullable=True)
    created_at: datetime = _utc_column()
    updated_at: datetime = _utc_column()
    converted_at: datetime | None = _utc_column(nullable=True)


class MatchCandidates(SQLModel, table=True):
    """A decision's candidates and their checks, kept once for every decision that came out
    the same (most leads of a funnel do): `digest` is the SHA-256 of the JSON."""

    __tablename__ = "match_candidates"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(unique=True, max_length=64)
    candidates: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))


class MatchDecision(SQLModel, table=True):
    """Why a lead got a sequence, or none: every candidate and its checks (for `explain`).

    The candidates are a MatchCandidates row (`candidates_id`); decisions made before
    migration 0007 keep theirs inline in `candidates`. Read them with store.decisions.
    """

    __tablename__ = "match_decision"

    # A log: no foreign keys (migration 0007), written with its lead; nothing is deleted.
    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(index=True)
    funnel_id: int | None = None
    sequence_id: int | None = None
    reason: str
    candidates: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    candidates_id: int | None = None
    decided_at: datetime = _utc_column()


class Enrollment(SQLModel, table=True):
    """A lead in a sequence; the row is the schedule: status, next step, when, attempts, lease.

    status: active (waits for next_run_at), running (claimed under a lease), paused,
    completed, converted, stopped, failed, unknown (a send may have happened: settled by asking
    the provider where its channel can, else by `nurture enrollments settle`).
    """

    __tablename__ = "enrollment"
    __table_args__ = (
        Index(
            "ix_enrollment_due",
            "next_run_at",
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index(
            "ix_enrollment_lease",
            "lease_expires_at",
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        # The daemon's settle tick (migration 0011): unknown enrollments, oldest first.
        Index(
            "ix_enrollment_unknown",
            "updated_at",
            sqlite_where=text("status = 'unknown'"),
            postgresql_where=text("status = 'unknown'"),
        ),
        # Covering `nurture stats` (migration 0005): outcomes per sequence and version.
        Index(
            "ix_enrollment_stats",
            "sequence_id",
            "version",
            "status",
            "enrolled_at",
            "finished_at",
        ),  # fmt: skip
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    sequence_id: int = Field(foreign_key="sequence.id")  # ix_enrollment_stats leads with it
    version: int
    status: str = Field(default="active", max_length=20)
    step_id: str | None = Field(default=None, max_length=100)
    next_run_at: datetime | None = _utc_column(nullable=True)
    attempts: int = 0
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = _utc_column(nullable=True)
    enrolled_at: datetime = _utc_column()
    updated_at: datetime = _utc_column()
    finished_at: datetime | None = _utc_column(nullable=True)
    exit_reason: str | None = None


class Execution(SQLModel, table=True):
    """One attempt at one step: the log, and the idempotency key (enrollment, step, attempt).

    status: sending (recorded just before its provider call), sent, done, skipped, failed, retry,
    unknown (the send may have reached the provider: see Enrollment).
    """

    __tablename__ = "execution"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_id", "attempt"),
        # Covering `nurture stats` (migration 0005): per step, per channel.
        Index(
            "ix_execution_steps",
            "sequence_id",
            "status",
            "step_id",
            "version",
            "attempt",
            "due_at",
            "started_at",
        ),  # fmt: skip
        Index("ix_execution_channel", "action_type", "status", "started_at"),
    )

    # No foreign keys (migration 0007): the engine writes a row only for an enrollment it
    # holds, lead and sequence are the enrollment's, and nothing here is ever deleted.
    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: int
    lead_id: int = Field(index=True)
    sequence_id: int
    version: int
    step_id: str = Field(max_length=100)
    action_type: str = Field(max_length=40)
    attempt: int = 1
    status: str = Field(max_length=20)
    due_at: datetime = _utc_column()
    started_at: datetime | None = _utc_column(nullable=True)
    finished_at: datetime | None = _utc_column(nullable=True)
    error: str | None = None
    provider_id: str | None = Field(default=None, max_length=200, index=True)
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    delivery_status: str | None = Field(default=None, max_length=20)
    """What the provider last reported (queued, sent, delivered, undelivered, failed, read)."""
    delivery_error: str | None = None
    delivery_updated_at: datetime | None = _utc_column(nullable=True)


class OutboxMessage(SQLModel, table=True):
    """A message the outbox channel kept instead of sending (development, demos, tests)."""

    __tablename__ = "outbox_message"

    id: int | None = Field(default=None, primary_key=True)
    # No foreign key (migration 0007): written in the transaction that writes its execution.
    execution_id: int | None = Field(default=None, unique=True)
    channel: str = Field(max_length=20)
    recipient: str = Field(max_length=320)
    subject: str | None = None
    body: str
    created_at: datetime = _utc_column()


class Task(SQLModel, table=True):
    __tablename__ = "task"

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    execution_id: int | None = Field(default=None, foreign_key="execution.id", unique=True)
    title: str
    description: str | None = None
    assignee: str | None = Field(default=None, max_length=200)
    priority: str = Field(default="normal", max_length=10)
    due_at: datetime | None = _utc_column(nullable=True)
    created_at: datetime = _utc_column()
    done_at: datetime | None = _utc_column(nullable=True)


class Appointment(SQLModel, table=True):
    __tablename__ = "appointment"

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    execution_id: int | None = Field(default=None, foreign_key="execution.id", unique=True)
    title: str
    starts_at: datetime = _utc_column()
    duration_minutes: int = 30
    location: str | None = None
    notes: str | None = None
    created_at: datetime = _utc_column()


class Notification(SQLModel, table=True):
    """An internal note for the coach (send_notification steps and failure alerts)."""

    __tablename__ = "notification"

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int | None = Field(default=None, foreign_key="lead.id", index=True)
    execution_id: int | None = Field(default=None, foreign_key="execution.id", unique=True)
    message: str
    channel: str | None = Field(default=None, max_length=100)
    urgent: bool = False
    created_at: datetime = _utc_column()
    read_at: datetime | None = _utc_column(nullable=True)


class Worker(SQLModel, table=True):
    """A running daemon's heartbeat, for `nurture status`."""

    __tablename__ = "worker"

    id: str = Field(primary_key=True, max_length=100)
    hostname: str = Field(max_length=200)
    pid: int
    started_at: datetime = _utc_column()
    seen_at: datetime = _utc_column()
    executed: int = 0


class ChannelSlot(SQLModel, table=True):
    """A kind of message's next free send slot, reserved by every daemon on the store (the
    shared rate limit: see nurture.store.slots). Seconds since the epoch, by the store's clock."""

    __tablename__ = "channel_slot"

    channel: str = Field(primary_key=True, max_length=20)
    next_slot_at: float


class ApiToken(SQLModel, table=True):
    """A bearer token of the HTTP API: only its SHA-256 is kept (the token is shown once).

    One live token per name; a revoked token's name can be used again (rotation).
    """

    __tablename__ = "api_token"
    __table_args__ = (
        Index(
            "uq_api_token_live_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(unique=True, max_length=64)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc_column()
    revoked_at: datetime | None = _utc_column(nullable=True)


class IngestKey(SQLModel, table=True):
    """An `Idempotency-Key` of `POST /api/leads` and the answer it got, replayed on a retry."""

    __tablename__ = "ingest_key"

    key: str = Field(primary_key=True, max_length=200)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    response: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    body_hash: str | None = Field(default=None, max_length=64)
    """The SHA-256 of the request's lead: a retry with another body is refused (null before 0009)."""
    created_at: datetime = _utc_column()


class ProviderCallback(SQLModel, table=True):
    """A provider callback already handled (e.g. `twilio:inbound:SM...`): a retry changes nothing."""

    __tablename__ = "provider_callback"

    key: str = Field(primary_key=True, max_length=200)
    received_at: datetime = _utc_column()


class ConsentEvent(SQLModel, table=True):
    """A lead opting out of (or back into) a channel: who said so, how, and when.

    source: cli, api (an event posted to the HTTP API), unsubscribe (a signed link), inbound (a
    STOP or START reply), provider
    (the provider reports the recipient unsubscribed).
    """

    __tablename__ = "consent_event"

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    channel: str = Field(max_length=20)
    action: str = Field(max_length=10)  # opt_out, opt_in
    source: str = Field(max_length=20)
    detail: str | None = None
    created_at: datetime = _utc_column()
