"""Sequences, their applied versions and steps, and the funnels that feed them."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field

from nurture.store.tables.base import Stored, utc_column


class Sequence(Stored, table=True):
    __tablename__ = "sequence"

    id: int = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    slug: str = Field(unique=True, index=True, max_length=200)
    description: str = ""
    category: str = Field(max_length=40)
    active: bool = True
    priority: int = 0
    current_version: int = 1
    fingerprint: str = Field(max_length=64)
    source_path: str | None = Field(default=None, max_length=500)
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    deleted_at: datetime | None = utc_column(nullable=True)
    canary_version: int | None = None
    """A version getting `canary_share` of new enrollments (`apply --canary`, migration 0013)."""
    canary_share: float | None = None
    canary_started_at: datetime | None = utc_column(nullable=True)


class SequenceVersion(Stored, table=True):
    __tablename__ = "sequence_version"
    __table_args__ = (UniqueConstraint("sequence_id", "version"),)

    id: int = Field(default=None, primary_key=True)
    sequence_id: int = Field(foreign_key="sequence.id", index=True)
    version: int
    fingerprint: str = Field(max_length=64)
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    source_path: str | None = Field(default=None, max_length=500)
    applied_at: datetime = utc_column()


class Step(Stored, table=True):
    """A step of one sequence version; `step_id` is the stable identity across versions."""

    __tablename__ = "step"
    __table_args__ = (
        UniqueConstraint("version_id", "step_id"),
        UniqueConstraint("version_id", "position"),
    )

    id: int = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="sequence_version.id", index=True)
    position: int
    step_id: str = Field(max_length=100)
    name: str = Field(max_length=200)
    action_type: str = Field(max_length=40)
    action_config: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    delay_seconds: int = 0
    conditions: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    active: bool = True


class Funnel(Stored, table=True):
    """A lead source: a landing page, a form, an ad campaign."""

    __tablename__ = "funnel"

    id: int = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    slug: str = Field(unique=True, index=True, max_length=200)
    created_at: datetime = utc_column()


class FunnelAssignment(Stored, table=True):
    __tablename__ = "funnel_assignment"

    funnel_id: int = Field(foreign_key="funnel.id", primary_key=True)
    sequence_id: int = Field(foreign_key="sequence.id", primary_key=True, index=True)
    created_at: datetime = utc_column()
    weight: int | None = None
    """The sequence's weight in the funnel's split of new leads (migration 0013); None: no split."""
