"""Alembic's entry point, run by nurture.store.migrate with a connection inside its transaction,
or offline (`nurture db upgrade --sql`) with the store's URL: the SQL is written, not run."""

from typing import Any, Literal

from alembic import context
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from nurture.store.tables import include_object  # (and the tables, on SQLModel.metadata)


def render_item(kind: str, item: Any, _context: Any) -> str | Literal[False]:
    """Autogenerate writes plain `sa.String` for SQLModel's str columns: no sqlmodel import."""
    if kind == "type" and isinstance(item, AutoString):
        return f"sa.String(length={item.length})" if item.length else "sa.String()"
    return False


def run(**where: Any) -> None:
    """The migrations on `connection=`, or offline as SQL for `url=`."""
    dialect = (
        where["connection"].dialect.name
        if "connection" in where
        else where["url"].get_backend_name()
    )
    context.configure(
        **where,
        target_metadata=SQLModel.metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=dialect == "sqlite",
        render_item=render_item,
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    if context.config.attributes.get("url") is None:
        raise SystemExit("nurture's migrations run from code: use `nurture db upgrade --sql`")
    run(url=context.config.attributes["url"], literal_binds=True)
elif context.config.attributes.get("connection") is None:
    raise SystemExit("nurture's migrations run from code: use `nurture db upgrade`")
else:
    run(connection=context.config.attributes["connection"])
