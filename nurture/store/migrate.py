"""Alembic migrations shipped in the package and run from code: users need no alembic.ini.

Every upgrade is one transaction (SQLite and Postgres both have transactional DDL) taken with
the write lock (SQLite `BEGIN IMMEDIATE`, a Postgres advisory lock), so processes starting
together upgrade once and the others find the store current.
"""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, exc, text

from nurture.errors import StoreError
from nurture.store.connect import BEGIN_MODE, engine_for, masked, reason, sqlite_path

MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_LOCK = 0x6E757274  # "nurt": the Postgres advisory lock held while upgrading


def head() -> str:
    """The newest revision this version of nurture knows."""
    found = _scripts().get_current_head()
    assert found is not None, f"no migrations in {MIGRATIONS}"
    return found


def current(url: str) -> str | None:
    """The store's revision; None for an empty store (a missing SQLite file is not created)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    with engine_for(url) as engine:
        return revision_of(engine)


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the store to `revision`; returns the revisions it went from and to."""
    with engine_for(url) as engine:
        return upgrade_engine(engine, revision)


def revision_of(engine: Engine) -> str | None:
    """The revision recorded in the store's alembic_version table (one cheap query)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def ensure_current(engine: Engine) -> None:
    """Upgrade the store to head unless it is there already."""
    if revision_of(engine) != head():
        upgrade_engine(engine, "head")


def upgrade_engine(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade through an open engine, in one locked transaction."""
    url = masked(engine.url)
    try:
        with engine.connect() as connection, _foreign_keys_deferred(connection):
            connection.execution_options(**{BEGIN_MODE: "IMMEDIATE"})
            with connection.begin():
                return _upgrade_locked(connection, revision)
    except CommandError as error:
        raise StoreError(f"cannot upgrade the store {url}: {error}") from error
    except (exc.OperationalError, exc.InterfaceError):
        raise  # the store cannot be reached: engine_for reports it
    except exc.DBAPIError as error:  # permissions, a half-made schema: the user can act on them
        raise StoreError(f"cannot upgrade the store {url}: {reason(error)}") from error


def _upgrade_locked(connection: Connection, revision: str) -> tuple[str | None, str | None]:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
    before = MigrationContext.configure(connection).get_current_revision()
    if before is not None and not known(before):
        raise StoreError(
            f"the store {masked(connection.engine.url)} is at revision {before}, which this "
            f"version of nurture does not know (its newest is {head()}): upgrade nurture"
        )
    command.upgrade(_config(connection), revision)
    _check_foreign_keys(connection)
    return before, MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _foreign_keys_deferred(connection: Connection) -> Iterator[None]:
    """SQLite: foreign keys off while migrations rebuild tables (batch mode), checked after.

    A rebuilt table is dropped and recreated; with foreign keys on, the drop fails or cascades
    into the rows that refer to it. The pragma only takes effect outside a transaction.
    """
    driver = connection.connection.driver_connection
    if connection.dialect.name != "sqlite" or driver is None:
        yield
        return
    driver.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys = ON")


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise StoreError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")


def known(revision: str) -> bool:
    """Whether `revision` is one of this version's migrations."""
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def new_revision(message: str) -> Path:
    """For developers: write the next migration, autogenerated from the tables (then edit it)."""
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'head.db'}"
        with engine_for(url) as engine:
            upgrade_engine(engine)
            with engine.begin() as connection:
                rev_id = f"{int(head()) + 1:04d}"
                command.revision(_config(connection), message, autogenerate=True, rev_id=rev_id)
    _scripts.cache_clear()
    return next(MIGRATIONS.glob(f"versions/{rev_id}_*.py"))
