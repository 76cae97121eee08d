"""Engines for the store: URL forms, SQLite's pragmas and BEGIN, errors a user can read.

SQLite transactions. sqlite3's own transaction handling skips BEGIN before SELECT and DDL,
which breaks repeatable reads and transactional DDL, so it is switched off
(`isolation_level = None`) and SQLAlchemy's `begin` event emits BEGIN itself: the recipe in
SQLAlchemy's SQLite docs ("Enabling Non-Legacy SQLite Transactional Modes"). The kind of BEGIN
comes from the execution option `BEGIN_MODE`; a transaction that will write should take the
write lock up front, or a reader that later writes fails at once with SQLITE_BUSY in WAL mode
instead of waiting out `busy_timeout`:

    with engine.execution_options(**{BEGIN_MODE: "IMMEDIATE"}).begin() as connection: ...

`Store.session(immediate=True)` and `Store.begin(immediate=True)` do this for you. Postgres
ignores the option.
"""

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, get_args

import sqlalchemy
from sqlalchemy import Connection, Engine, event, exc
from sqlalchemy.engine import URL, make_url

from nurture.errors import StoreError

BUSY_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_S = 10
BEGIN_MODE = "nurture_sqlite_begin"
BeginMode = Literal["DEFERRED", "IMMEDIATE", "EXCLUSIVE"]
_BEGIN_MODES: frozenset[str] = frozenset(get_args(BeginMode))
_POSTGRES_NAMES = {"postgres", "postgresql"}


def normalize_url(url: str) -> URL:
    """The URL as SQLAlchemy wants it, Postgres on psycopg 3 (`postgres://`, `postgresql://`)."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise StoreError(f"invalid store URL {masked(url)!r}") from None
    if parsed.drivername in _POSTGRES_NAMES:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported store URL {masked(url)!r}: use sqlite:///PATH or postgresql+psycopg://..."
        )
    return parsed


def masked(url: str | URL) -> str:
    """The URL with its password hidden, for messages."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other stores and in-memory databases."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def create_engine(url: str, **options: Any) -> Engine:
    """An engine for the store at `url`: SQLite in WAL mode with a busy timeout, or Postgres.

    Its errors never show a statement's values (leads' personal data): hide_parameters.
    """
    parsed = normalize_url(url)
    options.setdefault("hide_parameters", True)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, **options)
        return _postgres_engine(parsed, **options)
    except (exc.NoSuchModuleError, ModuleNotFoundError) as error:
        raise StoreError(f"cannot use the store {masked(parsed)}: {error}") from None


def _postgres_engine(url: URL, **options: Any) -> Engine:
    # Without a timeout a host that drops packets hangs the command for minutes.
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT_S}
    # pre_ping: a daemon outlives server restarts; a dead pooled connection is replaced, not raised.
    engine = sqlalchemy.create_engine(url, connect_args=connect_args, pool_pre_ping=True, **options)
    event.listen(engine, "connect", _on_postgres_connect)
    return engine


POSTGRES_OLDEST = 140000
"""Postgres 14 or newer (server_version_num): the caps ledger's statement reads a row's text
with split_part(..., -1), which 14 brought (nurture.store.caps)."""


def _on_postgres_connect(dbapi_connection: Any, _record: Any) -> None:
    version = dbapi_connection.info.server_version
    if version < POSTGRES_OLDEST:
        shown = f"{version // 10000}.{version % 10000}"
        dbapi_connection.close()  # the pool never gets it
        raise StoreError(f"nurture needs Postgres 14 or newer; this server runs {shown}")
    # Times come back in the session's time zone: UTC, whatever the server's default is.
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    dbapi_connection.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.autocommit = autocommit


def _sqlite_engine(url: URL, **options: Any) -> Engine:
    engine = sqlalchemy.create_engine(url, **options)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN: see _on_sqlite_begin
    cursor = dbapi_connection.cursor()
    try:
        # The timeout first: switching to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _wal(cursor)
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a killed process loses
        # nothing; a power cut may roll back the last commits, never corrupts (SQLite's docs).
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _wal(cursor: Any) -> None:
    """`PRAGMA journal_mode = WAL`, waiting out another connection that is switching a new
    file at the same moment: SQLite answers that one "database is locked" at once, without its
    busy handler (two daemons, or `run` and `serve`, starting together on a fresh store)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _on_sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(BEGIN_MODE, "DEFERRED")
    if mode not in _BEGIN_MODES:
        raise ValueError(f"{BEGIN_MODE} must be one of {sorted(_BEGIN_MODES)}, not {mode!r}")
    connection.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def reported(url: str) -> Iterator[None]:
    """Turn a store that cannot be reached into a StoreError naming the URL and the reason."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise StoreError(f"cannot use the store {masked(url)}: {reason(error)}") from error


def reason(error: BaseException) -> str:
    """The driver's message on one line, without SQLAlchemy's statement and link."""
    cause = getattr(error, "orig", None) or error
    lines = [" ".join(line.split()) for line in str(cause).splitlines()]
    return "; ".join(line for line in lines if line) or type(cause).__name__


@contextmanager
def engine_for(url: str, **options: Any) -> Iterator[Engine]:
    """An engine for one piece of work, disposed afterwards; unreachable stores are reported."""
    engine = create_engine(url, **options)
    try:
        with reported(url):
            yield engine
    finally:
        engine.dispose()
