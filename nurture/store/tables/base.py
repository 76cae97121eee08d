"""What every table shares: the base class, the constraint names, and UTC times."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Column, DateTime, Table, TypeDecorator
from sqlmodel import Field, SQLModel

# Named constraints, so later migrations can drop them (SQLite rebuilds tables by name).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class Stored(SQLModel):
    """A row of a table: tells type checkers of the `__table__` SQLAlchemy gives each table class."""

    if TYPE_CHECKING:  # declared for mypy only: at run time SQLAlchemy sets it
        __table__: ClassVar[Table]


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


def utc_column(nullable: bool = False) -> Any:
    """A column of aware UTC times (NOT NULL unless told)."""
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))
