"""Alembic migrations shipped in the package and run from code: users need no alembic.ini.

Every upgrade is one transaction (SQLite and Postgres both have transactional DDL) taken with
the write lock (SQLite `BEGIN IMMEDIATE`, a Postgres advisory lock), so processes starting
together upgrade once and the others find the store current.

Checking a store's revision needs no Alembic (its import costs a command a third of a second):
the revisions are the migration files' numbers (`versions/0011_unknown_index.py`), the store's
is one query; Alembic is imported to upgrade.
"""

import io
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, event, exc, inspect, text

from nurture.errors import StoreError
from nurture.store.connect import BEGIN_MODE, engine_for, masked, normalize_url, reason, sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_LOCK = 0x6E757274  # "nurt": the Postgres advisory lock held while upgrading
UPGRADE_HINT = "run `nurture db upgrade`"
UPGRADE_WAIT_MS = 120_000
"""SQLite: how long an upgrade waits for another process's (its migration) to end."""
_VERSION_FILE = re.compile(r"^(\d{4})_\w+\.py$")


_DOWN = re.compile(r"^down_revision = (?:\"(\d{4})\"|None)", re.M)


@cache
def revisions() -> tuple[str, ...]:
    """Every revision this version of nurture ships, oldest first (one per migration file),
    in the order their `down_revision`s chain them: an id is a name, not a position (a
    migration given 0015 may land after 0016), read from the files without loading Alembic."""
    files = {
        named.group(1): path
        for path in (MIGRATIONS / "versions").iterdir()
        if (named := _VERSION_FILE.match(path.name))
    }
    assert files, f"no migrations in {MIGRATIONS}"
    after: dict[str | None, str] = {}
    for revision_id, path in files.items():
        found = _DOWN.search(path.read_text(encoding="utf-8"))
        assert found, f"{path.name} has no down_revision"
        after[found.group(1)] = revision_id
    chain: list[str] = []
    revision = after.get(None)
    while revision is not None:
        chain.append(revision)
        revision = after.get(revision)
    assert len(chain) == len(files), f"the migrations in {MIGRATIONS} do not form one chain"
    return tuple(chain)


def head() -> str:
    """The newest revision this version of nurture knows."""
    return revisions()[-1]


def check_current(engine: Engine) -> None:
    """A StoreError unless the store is at head; one behind says to run `nurture db upgrade`."""
    revision = revision_of(engine)
    if revision != head():
        raise StoreError(behind(masked(engine.url), revision))


def behind(url: str, revision: str | None) -> str:
    """Why a store at `revision` cannot be used as it is, and what to do."""
    if revision is not None and not known(revision):
        return (
            f"the store {url} is at revision {revision}, which this version of nurture does "
            f"not know (its newest is {head()}): upgrade nurture"
        )
    at = f"at revision {revision}" if revision else "empty (no revision)"
    return f"the store {url} is {at}, this nurture needs revision {head()}: {UPGRADE_HINT}"


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
        return _revision(connection)


def _revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ensure_current(engine: Engine) -> None:
    """Upgrade the store to head unless it is there already."""
    if revision_of(engine) != head():
        upgrade_engine(engine, "head")


def upgrade_engine(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade through an open engine, in one locked transaction."""
    from alembic.util import CommandError

    url = masked(engine.url)
    try:
        with engine.connect() as connection, _sqlite_upgrading(connection):
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
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
    before = _revision(connection)
    if before is not None and not known(before):
        raise StoreError(behind(masked(connection.engine.url), before))
    command.upgrade(_config(connection), revision)
    _check_foreign_keys(connection)
    return before, _revision(connection)


def upgrade_sql(url: str) -> str:
    """The SQL that would bring the store to head, for a DBA to run; the store is only read.

    Empty for a store at head. Postgres: Alembic's offline mode, from the store's revision.
    SQLite: the upgrade rehearsed on a copy, its statements recorded (batch mode rebuilds a
    table by reading it, which the offline mode cannot).
    """
    before = current(url)
    if before == head():
        return ""
    if before is not None and not known(before):
        raise StoreError(behind(masked(url), before))
    if normalize_url(url).get_backend_name() == "sqlite":
        return _rehearsed_sql(sqlite_path(url))
    return _offline_sql(url, before)


def _offline_sql(url: str, before: str | None) -> str:
    from alembic import command
    from alembic.util import CommandError

    buffer = io.StringIO()
    config = _config(output=buffer)
    config.attributes["url"] = normalize_url(url)
    try:
        command.upgrade(config, f"{before}:head" if before else "head", sql=True)
    except CommandError as error:
        raise StoreError(f"cannot write the upgrade SQL for {masked(url)}: {error}") from error
    return buffer.getvalue()


_NOT_DDL = ("PRAGMA", "SELECT", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def _rehearsed_sql(path: Path | None) -> str:
    """The statements an upgrade runs on a copy of the SQLite file at `path` (None: a new one)."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "rehearsal.db"
        if path is not None and path.exists():
            _copy_sqlite(path, copy)
        statements: list[str] = []
        with engine_for(f"sqlite:///{copy}") as engine:

            def record(
                _conn: object, _cursor: object, statement: str, params: object, *_: object
            ) -> None:
                if not statement.lstrip().upper().startswith(_NOT_DDL):
                    statements.append(_literal(statement, params))

            event.listen(engine, "before_cursor_execute", record)
            upgrade_engine(engine)
    body = "".join(f"{statement.strip()};\n\n" for statement in statements)
    # As nurture runs it: one transaction, foreign keys off while tables are rebuilt.
    return f"PRAGMA foreign_keys = OFF;\nBEGIN;\n\n{body}COMMIT;\nPRAGMA foreign_keys = ON;\n"


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's backup API, the source opened read-only."""
    reading = closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True))
    with reading as reader, closing(sqlite3.connect(target)) as writer:
        reader.backup(writer)


def _literal(statement: str, params: object) -> str:
    """The statement with its `?` parameters written in (alembic_version's revision)."""
    values = list(params) if isinstance(params, tuple | list) else []
    for value in values:
        text_value = (
            "NULL" if value is None else f"'{value}'" if isinstance(value, str) else str(value)
        )
        statement = statement.replace("?", text_value, 1)
    return statement


@contextmanager
def _sqlite_upgrading(connection: Connection) -> Iterator[None]:
    """SQLite: foreign keys off while migrations rebuild tables (batch mode), checked after,
    and a longer wait for the write lock.

    A rebuilt table is dropped and recreated; with foreign keys on, the drop fails or cascades
    into the rows that refer to it. The pragma only takes effect outside a transaction.
    Processes started together on a new store (`run` and `serve`, or the demo's) queue for the
    lock while the first one migrates, which takes longer than a write on a busy machine: they
    wait up to UPGRADE_WAIT_MS instead of failing "database is locked" after the usual timeout,
    which the connection gets back after.
    """
    driver = connection.connection.driver_connection
    if connection.dialect.name != "sqlite" or driver is None:
        yield
        return
    (usual,) = driver.execute("PRAGMA busy_timeout").fetchone()
    driver.execute("PRAGMA foreign_keys = OFF")
    driver.execute(f"PRAGMA busy_timeout = {UPGRADE_WAIT_MS}")
    try:
        yield
    finally:
        driver.execute(f"PRAGMA busy_timeout = {usual}")
        driver.execute("PRAGMA foreign_keys = ON")


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise StoreError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")


def known(revision: str) -> bool:
    """Whether `revision` is one of this version's migrations."""
    return revision in revisions()


def _config(connection: Connection | None = None, output: io.StringIO | None = None) -> "Config":
    from alembic.config import Config

    config = Config(output_buffer=output)
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def scripts() -> "ScriptDirectory":
    """Alembic's view of the migrations (for developers and tests: it imports every one)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def new_revision(message: str) -> Path:
    """For developers: write the next migration, autogenerated from the tables (then edit it)."""
    from alembic import command

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'head.db'}"
        with engine_for(url) as engine:
            upgrade_engine(engine)
            with engine.begin() as connection:
                rev_id = f"{int(head()) + 1:04d}"
                command.revision(_config(connection), message, autogenerate=True, rev_id=rev_id)
    revisions.cache_clear()
    return next(MIGRATIONS.glob(f"versions/{rev_id}_*.py"))
