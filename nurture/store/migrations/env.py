"""Alembic's entry point, run by nurture.store.migrate with a connection inside its transaction."""

from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from nurture.store.tables import include_object  # (and the tables, on SQLModel.metadata)


def render_item(kind: str, item: Any, _context: Any) -> str | Literal[False]:
    """Autogenerate writes plain `sa.String` for SQLModel's str columns: no sqlmodel import."""
    if kind == "type" and isinstance(item, AutoString):
        return f"sa.String(length={item.length})" if item.length else "sa.String()"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("nurture's migrations run online only: use `nurture db upgrade`")
if context.config.attributes.get("connection") is None:
    raise SystemExit("nurture's migrations run from code: use `nurture db upgrade`")
run(context.config.attributes["connection"])
