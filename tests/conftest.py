"""Shared fixtures: a clean environment, the CLI runner, a temp project."""

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

import nurture
from nurture.cli.runner import Result
from nurture.store.connect import normalize_url
from nurture.store.db import Store, open_store

for _name in list(os.environ):
    if _name.startswith("NURTURE_") and _name != "NURTURE_TEST_DATABASE_URL":
        del os.environ[_name]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `nurture ARGS...` in-process (`nurture.invoke`), as a user would from the project
    directory; an error that escapes the command (with --debug) is raised in the test."""

    def invoke(*args: str, input: str | None = None, cwd: Path | None = None) -> Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        result = nurture.invoke(list(args), input=input)
        if result.exception is not None:
            raise result.exception
        return result

    return invoke


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty nurture project (nurture.toml, sequences/) as the working directory."""
    (tmp_path / "nurture.toml").write_text('sequences_dir = "sequences"\ntimezone = "UTC"\n')
    (tmp_path / "sequences").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


# The store: every store test runs on SQLite and, where NURTURE_TEST_DATABASE_URL names a
# server (as .ci/run does), on Postgres, each test in a schema of its own.

POSTGRES_SKIPPED = "NURTURE_TEST_DATABASE_URL not set: Postgres tests skipped"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on Postgres carries the `postgres` marker, so `-m "not postgres"` works."""
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty Postgres store: a fresh schema, set as the search_path, dropped afterwards."""
    server = os.environ.get("NURTURE_TEST_DATABASE_URL")
    if not server:
        pytest.skip(POSTGRES_SKIPPED)
    schema = f"nurture_test_{uuid.uuid4().hex[:16]}"  # unique: parallel runs share the server
    admin = sqlalchemy.create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = normalize_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            # A session the test leaked makes the drop fail instead of hang.
            connection.exec_driver_sql("SET lock_timeout = '10s'")
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store on each database: tmp_path/nurture.db (the `project`'s default), Postgres."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'nurture.db'}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """The store at `store_url`, migrated to head."""
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def run_store(
    run: Callable[..., Result], store_url: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """`run` with `--database-url` set to `store_url`: a CLI test on both databases. Commands
    that write migrate the store on Postgres too (auto_migrate), as they do on SQLite."""
    monkeypatch.setenv("NURTURE_AUTO_MIGRATE", "true")

    def invoke(*args: str, **options: object) -> Result:
        return run("--database-url", store_url, *args, **options)

    return invoke


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[str]:
    """Radicale (CalDAV) on a free port, storing in a temp folder, any login accepted: its URL."""
    from calendars import radicale

    with radicale(tmp_path) as url:
        yield url


@pytest.fixture
def coach_calendar(radicale: str) -> Any:
    """The coach's calendar "Coach Kim" in Radicale (a caldav Calendar)."""
    import caldav

    client = caldav.DAVClient(radicale, username="coach", password="secret")
    return client.principal().make_calendar(name="Coach Kim")


@pytest.fixture(params=["password", "oauth"])
def calendar_login(request: pytest.FixtureRequest, radicale: str) -> Iterator[Any]:
    """How nurture logs in to the coach's calendar: a password, or OAuth (Radicale behind a
    Bearer-only proxy, as Google's CalDAV is): a calendars.Login."""
    from calendars import oauth_login, password_login

    if request.param == "password":
        yield password_login(radicale)
        return
    with oauth_login(radicale) as login:
        yield login
