"""Opening the store: schema brought up to date on its own, SQLite tuned, errors a user can read."""

import json
import sqlite3
import threading
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel, select

from nurture.errors import StoreError
from nurture.leads.records import find_lead
from nurture.store import migrate
from nurture.store.connect import normalize_url
from nurture.store.db import Store, open_store
from nurture.store.decisions import candidates_id, candidates_of
from nurture.store.tables import Funnel, MatchDecision, include_object

TABLES = {"sequence", "sequence_version", "step", "funnel", "funnel_assignment", "alembic_version"}
TABLES |= {"lead", "match_decision", "enrollment", "execution", "outbox_message", "task"}
TABLES |= {"appointment", "notification", "worker", "consent_event"}
TABLES |= {"api_token", "ingest_key", "provider_callback", "match_candidates", "channel_slot"}
TABLES |= {"engagement_event"}
TABLES |= {"lead_key", "lead_merge", "inbound_message"}
TABLES |= {"lead_cap"}  # frequency caps (issue 17)
TABLES |= {"activity"}  # the dashboard's activity (issue 15)
UNREACHABLE = "postgresql+psycopg://nurture:s3cret@127.0.0.1:1/nurture"


def pragma(store: Store, name: str) -> object:
    with store.begin() as connection:
        return connection.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_a_fresh_sqlite_file_gets_the_schema_in_wal_mode(tmp_path: Path):
    with open_store(f"sqlite:///{tmp_path / 'nurture.db'}") as store:
        assert set(sqlalchemy.inspect(store.engine).get_table_names()) == TABLES
        assert pragma(store, "journal_mode") == "wal"
        assert pragma(store, "busy_timeout") == 5000
        assert pragma(store, "foreign_keys") == 1
    assert migrate.current(f"sqlite:///{tmp_path / 'nurture.db'}") == migrate.head()


# The expression indexes for medians (migration 0005) are made by hand, per dialect.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_the_migrated_schema_matches_the_tables(store: Store):
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include_object})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_opening_a_current_store_runs_no_migration(store_url: str, monkeypatch):
    with open_store(store_url):
        pass

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the migration machinery ran on a current store")

    monkeypatch.setattr("alembic.command.upgrade", refuse)
    with open_store(store_url) as store:
        assert migrate.revision_of(store.engine) == migrate.head()


def test_stores_opened_together_upgrade_once(store_url: str):
    failures: list[BaseException] = []

    def open_one() -> None:
        try:
            with open_store(store_url):
                pass
        except BaseException as problem:  # reported below, in the test's thread
            failures.append(problem)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert migrate.current(store_url) == migrate.head()


def test_an_upgrade_waits_out_a_migration_longer_than_a_writes_timeout(tmp_path: Path, monkeypatch):
    """A process starting while another migrates a new SQLite store (the lock held past the
    usual busy timeout on a busy machine) waits for it, then finds the store current."""
    from nurture.store import connect

    monkeypatch.setattr(connect, "BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "nurture.db"
    url = f"sqlite:///{path}"
    migrating = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    migrating.execute("PRAGMA journal_mode = WAL")
    migrating.execute("BEGIN IMMEDIATE")  # the first process, migrating
    threading.Timer(0.8, migrating.execute, ["ROLLBACK"]).start()
    with open_store(url) as store:
        assert migrate.revision_of(store.engine) == migrate.head()
        with store.engine.connect() as connection:  # writes wait no longer than before
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 100
    migrating.close()


def test_a_session_commits_at_the_end_and_rolls_back_on_error(store: Store):
    now = datetime.now(UTC)
    with store.session() as session:
        session.add(Funnel(name="Webinar", slug="webinar", created_at=now))
    with pytest.raises(RuntimeError), store.session(immediate=True) as session:
        session.add(Funnel(name="Lost", slug="lost", created_at=now))
        session.flush()
        raise RuntimeError("boom")
    with store.session() as session:
        assert session.exec(select(Funnel.slug)).all() == ["webinar"]


def test_an_immediate_transaction_holds_the_sqlite_write_lock(tmp_path: Path):
    path = tmp_path / "nurture.db"
    with open_store(f"sqlite:///{path}") as store:
        other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        with store.session() as session:
            session.exec(select(Funnel)).all()
            other.execute("BEGIN IMMEDIATE")  # a reading session does not keep writers out
            other.execute("ROLLBACK")
        with store.session(immediate=True) as session:
            session.exec(select(Funnel)).all()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.close()


@pytest.mark.parametrize("given", ["postgres://u:p@db/n", "postgresql://u:p@db/n"])
def test_postgres_urls_use_psycopg_3(given: str):
    assert normalize_url(given).drivername == "postgresql+psycopg"


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_every_postgres_url_form_opens(postgres_url: str, scheme: str):
    url = scheme + postgres_url[postgres_url.index("://") :]
    with open_store(url) as store:
        assert store.engine.dialect.driver == "psycopg"
    assert migrate.current(url) == migrate.head()


def test_postgres_times_come_back_in_utc(postgres_url: str):
    url = postgres_url.replace("-csearch_path", "-cTimeZone%3DAmerica/New_York+-csearch_path")
    with open_store(url) as store, store.begin() as connection:
        assert connection.exec_driver_sql("SHOW TIME ZONE").scalar() == "UTC"
        now = connection.exec_driver_sql("SELECT now()").scalar()
        assert now.utcoffset() == timedelta(0)


def test_an_unreachable_postgres_is_a_store_error_without_the_password():
    with pytest.raises(StoreError) as raised, open_store(UNREACHABLE):
        pass
    message = str(raised.value)
    assert "postgresql+psycopg://nurture:***@127.0.0.1:1/nurture" in message
    assert "refused" in message and "s3cret" not in message


def test_a_sqlite_file_in_a_missing_folder_is_a_store_error(tmp_path: Path):
    with (
        pytest.raises(StoreError, match="unable to open database file"),
        open_store(f"sqlite:///{tmp_path / 'missing' / 'nurture.db'}"),
    ):
        pass


def test_other_databases_are_refused():
    with pytest.raises(StoreError, match="unsupported store URL 'mysql://u:\\*\\*\\*@db/n'"):
        normalize_url("mysql://u:secret@db/n")


def test_a_store_newer_than_nurture_is_refused(store: Store):
    with store.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="revision 9999.*upgrade nurture"), open_store(store.url):
        pass


def test_reading_the_revision_of_a_missing_sqlite_file_does_not_create_it(tmp_path: Path):
    assert migrate.current(f"sqlite:///{tmp_path / 'nurture.db'}") is None
    assert not (tmp_path / "nurture.db").exists()


def test_every_migration_file_ships_in_the_wheel():
    root = Path(migrate.__file__).parent.parent
    pyproject = tomllib.loads((root.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["nurture"]
    shipped = {path for pattern in patterns for path in root.glob(pattern)}
    files = {p for p in migrate.MIGRATIONS.rglob("*") if "__pycache__" not in p.parts}
    files = {p for p in files if p.is_file()}
    assert files and files <= shipped


def old_lead(connection: sqlalchemy.Connection, email: str | None = None) -> None:
    """Lead 1, written as an older nurture wrote it (SQL, not today's code)."""
    connection.execute(
        sqlalchemy.text(
            "INSERT INTO lead (id, name, first_name, email, score, tags, fields, opted_out, "
            "created_at, updated_at) VALUES (1, 'Ana', 'Ana', :email, 0, '[]', '{}', '[]', "
            ":now, :now)"
        ),
        {"email": email, "now": datetime.now(UTC)},
    )


def test_decisions_stored_inline_before_0007_still_read(store_url: str):
    """Migration 0007 keeps a decision's candidate list once in match_candidates; decisions
    made before it keep theirs inline, and read the same."""
    migrate.upgrade(store_url, "0005")
    listed = [{"sequence": "Welcome", "sequence_id": 1, "matches": True, "checks": []}]
    engine = sqlalchemy.create_engine(normalize_url(store_url))
    with engine.begin() as connection:
        old_lead(connection)
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO match_decision (lead_id, reason, candidates, decided_at) "
                "VALUES (1, 'old', :listed, :now)"
            ),
            {"listed": json.dumps(listed), "now": datetime.now(UTC)},
        )
    engine.dispose()
    with open_store(store_url) as store, store.session() as session:
        connection = session.connection()
        old = session.exec(select(MatchDecision)).one()
        assert (old.candidates_id, candidates_of(connection, old)) == (None, listed)
        shared = candidates_id(connection, listed)
        assert candidates_id(connection, listed) == shared  # stored once
        assert candidates_id(connection, [*listed, *listed]) != shared
        new = MatchDecision(
            lead_id=1, reason="new", candidates_id=shared, decided_at=old.decided_at
        )
        assert candidates_of(connection, new) == listed


def test_emails_stored_before_0010_are_lower_cased_and_found(store_url: str):
    migrate.upgrade(store_url, "0009")
    engine = sqlalchemy.create_engine(normalize_url(store_url))
    with engine.begin() as connection:
        old_lead(connection, "Ana.Ruiz@example.com")
    engine.dispose()
    migrate.upgrade(store_url)
    with open_store(store_url) as store, store.session() as session:
        assert find_lead(session, "ANA.RUIZ@example.com").email == "ana.ruiz@example.com"


def test_processes_opening_a_new_sqlite_store_together_all_get_it(tmp_path: Path):
    """Two daemons (or `run` and `serve`) starting at once on a fresh store: the one switching
    the file to WAL second used to fail at once with "database is locked"."""
    failures: list[BaseException] = []

    def open_it(url: str) -> None:
        try:
            with open_store(url) as store:
                assert migrate.revision_of(store.engine) == migrate.head()
        except BaseException as problem:
            failures.append(problem)

    for trial in range(20):
        url = f"sqlite:///{tmp_path / f'n{trial}.db'}"
        threads = [threading.Thread(target=open_it, args=(url,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []


def test_only_sends_enter_the_provider_id_index(store: Store):
    """A delivery callback's lookup by provider id reads the partial index (migration 0012),
    which a step that sends nothing (no provider id) never writes to."""
    lookup = "SELECT id FROM execution WHERE provider_id = 'SM123'"
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "sqlite":
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + lookup).all()
            defined = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_execution_provider_id'"
            ).scalar_one()
        else:
            connection.exec_driver_sql("SET enable_seqscan = off")
            plan = connection.exec_driver_sql("EXPLAIN " + lookup).all()
            defined = connection.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_execution_provider_id' "
                "AND schemaname = current_schema()"
            ).scalar_one()
    assert "ix_execution_provider_id" in str(plan)
    assert "provider_id IS NOT NULL" in defined


def test_a_postgres_older_than_14_is_refused_with_its_version(
    run, project: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
):
    """The caps ledger's statement needs Postgres 14: an older server is named, not a SQL error
    in the middle of a batch. (The local server is newer: the bar is raised past it.)"""
    from nurture.store import connect

    probe = sqlalchemy.create_engine(normalize_url(postgres_url))
    with probe.connect() as connection:
        version = connection.connection.driver_connection.info.server_version
    probe.dispose()
    monkeypatch.setattr(connect, "POSTGRES_OLDEST", version + 1)
    result = run("--database-url", postgres_url, "status")
    assert result.exit_code != 0
    shown = f"{version // 10000}.{version % 10000}"
    assert f"nurture needs Postgres 14 or newer; this server runs {shown}" in result.output
    assert "Traceback" not in result.output
