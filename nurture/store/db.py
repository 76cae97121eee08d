"""Opening the store: an engine brought up to date, sessions and Core transactions on it.

    with open_store(settings.database) as store, store.session() as session:
        session.add(...)

A command that only reads opens it with `read_store`, which never migrates nor creates it.

See nurture.store.connect for SQLite's WAL mode, busy timeout and `BEGIN IMMEDIATE`.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from nurture.errors import StoreError
from nurture.store import migrate
from nurture.store.connect import (
    BEGIN_MODE,
    create_engine,
    engine_for,
    masked,
    reported,
    sqlite_path,
)

STORE_ERRORS = (StoreError, SQLAlchemyError)
"""A store that failed (an outage, a lost connection): what callers catch to carry on."""

if TYPE_CHECKING:  # the ORM: imported by the first session (`nurture plan` reads with Core)
    from sqlmodel import Session

__all__ = ["Store", "create_engine", "open_store"]


class Store:
    """An open store: its URL, its engine, and transactions on it."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self._writer = engine.execution_options(**{BEGIN_MODE: "IMMEDIATE"})

    @contextmanager
    def session(self, *, immediate: bool = False) -> Iterator["Session"]:
        """An ORM session that commits when the block ends and rolls back on an error.

        `immediate` takes SQLite's write lock at BEGIN: use it when the transaction writes.
        """
        from sqlmodel import Session

        with reported(self.url), Session(self._bind(immediate)) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def begin(self, *, immediate: bool = False) -> Iterator[Connection]:
        """A Core connection in a transaction, committed when the block ends (the hot path)."""
        with reported(self.url), self._bind(immediate).begin() as connection:
            yield connection

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def _bind(self, immediate: bool) -> Engine:
        return self._writer if immediate else self.engine


@contextmanager
def open_store(url: str, *, upgrade: bool = True) -> Iterator[Store]:
    """The store at `url`, first brought up to date (one query when it already is).

    With `upgrade=False` a store that is not at the code's revision is a StoreError that says
    to run `nurture db upgrade`, and nothing is changed.
    """
    with engine_for(url) as engine:
        if upgrade:
            migrate.ensure_current(engine)
        else:
            migrate.check_current(engine)
        yield Store(url, engine)  # engine_for disposes the engine afterwards


@contextmanager
def read_store(url: str) -> Iterator[Store]:
    """The store at `url` as it is, for reading: never migrated, never created.

    Behind the code it is a StoreError that says to run `nurture db upgrade`; not made yet (no
    SQLite file, an empty database) it reads as an empty store, as `terraform plan` reads no
    state as empty.
    """
    path = sqlite_path(url)
    if path is not None and not path.exists():  # connecting would create the file
        with empty_store() as store:
            yield store
        return
    with engine_for(url) as engine:
        revision = migrate.revision_of(engine)
        if revision is None:
            with empty_store() as store:
                yield store
            return
        if revision != migrate.head():
            raise StoreError(migrate.behind(masked(url), revision))
        yield Store(url, engine)


@contextmanager
def empty_store() -> Iterator[Store]:
    """An empty store in memory with the code's tables: what a store not made yet holds."""
    from sqlalchemy.pool import StaticPool
    from sqlmodel import SQLModel

    from nurture.store import tables  # noqa: F401 - the tables, on SQLModel.metadata

    url = "sqlite://"
    with engine_for(url, poolclass=StaticPool) as engine:  # one connection: one database
        SQLModel.metadata.create_all(engine)
        yield Store(url, engine)
