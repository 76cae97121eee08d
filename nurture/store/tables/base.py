"""What every table shares: the base class, the constraint names, and UTC times."""

from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Column, Table
from sqlmodel import Field, SQLModel

from nurture.store.utc import UTCDateTime

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


def utc_column(nullable: bool = False) -> Any:
    """A column of aware UTC times (NOT NULL unless told)."""
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))
