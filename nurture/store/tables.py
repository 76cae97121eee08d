"""Tables. Times are UTC. A sequence row is the current state; every applied version is kept."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel

# Named constraints, so later migrations can drop them (SQLite rebuilds tables by name).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


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
