"""The engine's schedule and log: enrollments, the executions of their steps, the daemons."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field

from nurture.store.tables.base import Stored, utc_column


class Enrollment(Stored, table=True):
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
        ),
    )

    id: int = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    sequence_id: int = Field(foreign_key="sequence.id")  # ix_enrollment_stats leads with it
    version: int
    status: str = Field(default="active", max_length=20)
    step_id: str | None = Field(default=None, max_length=100)
    next_run_at: datetime | None = utc_column(nullable=True)
    attempts: int = 0
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = utc_column(nullable=True)
    enrolled_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    finished_at: datetime | None = utc_column(nullable=True)
    exit_reason: str | None = None
    variants: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    """The variants assigned at enrollment, {step_id: [variant, version]} (migration 0013)."""


class Execution(Stored, table=True):
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
        ),
        Index("ix_execution_channel", "action_type", "status", "started_at"),
        # A delivery callback's lookup (migration 0012): only sends have a provider id.
        Index(
            "ix_execution_provider_id",
            "provider_id",
            sqlite_where=text("provider_id IS NOT NULL"),
            postgresql_where=text("provider_id IS NOT NULL"),
        ),
    )

    # No foreign keys (migration 0007): the engine writes a row only for an enrollment it
    # holds, lead and sequence are the enrollment's, and nothing here is ever deleted.
    id: int = Field(default=None, primary_key=True)
    enrollment_id: int
    lead_id: int = Field(index=True)
    sequence_id: int
    version: int
    step_id: str = Field(max_length=100)
    action_type: str = Field(max_length=40)
    attempt: int = 1
    status: str = Field(max_length=20)
    due_at: datetime = utc_column()
    started_at: datetime | None = utc_column(nullable=True)
    finished_at: datetime | None = utc_column(nullable=True)
    error: str | None = None
    provider_id: str | None = Field(default=None, max_length=200)  # ix_execution_provider_id
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    delivery_status: str | None = Field(default=None, max_length=20)
    """What the provider last reported (queued, sent, delivered, undelivered, failed, read)."""
    delivery_error: str | None = None
    delivery_updated_at: datetime | None = utc_column(nullable=True)
    variant: str | None = Field(default=None, max_length=40)
    """The variant of its step it ran (migration 0013); None: the step has none."""


class Worker(Stored, table=True):
    """A running daemon's heartbeat, for `nurture status`."""

    __tablename__ = "worker"

    id: str = Field(primary_key=True, max_length=100)
    hostname: str = Field(max_length=200)
    pid: int
    started_at: datetime = utc_column()
    seen_at: datetime = utc_column()
    executed: int = 0
