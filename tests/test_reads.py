"""Reads never write: a read leaves the store as it found it (or leaves it unmade); writes migrate
only where auto_migrate is on; `db upgrade --sql` prints the DDL and runs none of it."""

import os
from pathlib import Path

import pytest
import sqlalchemy
from builders import sequence, step, write

from nurture.store import migrate
from nurture.store.connect import masked, normalize_url

# The expression indexes for medians (migration 0005) are not reflected: the others are compared.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index"
)
READS = [
    ["plan"],
    ["stats"],
    ["logs"],
    ["status"],
    ["explain", "ana@example.com"],
    ["leads", "list"],
    ["leads", "show", "ana@example.com"],
    ["enrollments", "list"],
    ["sequences", "list"],
    ["sequences", "show", "welcome"],
    ["funnels", "list"],
    ["tasks", "list"],
    ["appointments", "list"],
    ["notifications", "list"],
    ["tokens", "list"],
    ["outbox", "list"],
    ["report", "--html", os.devnull],
    ["enrollments", "settle", "--as", "stop"],  # without --yes and a terminal: the plan only
]
STORELESS = [["validate"], ["test"], ["config", "show"], ["schema"], ["channels", "check"]]
"""Reads that never open the store: a store behind the code does not stop them."""
PREVIOUS = migrate.revisions()[-2]


def schema(url: str) -> tuple[str | None, list[str], list[str]]:
    """The store's revision, its tables and its indexes: what a migration changes."""
    engine = sqlalchemy.create_engine(normalize_url(url))
    try:
        inspector = sqlalchemy.inspect(engine)
        tables = sorted(inspector.get_table_names())
        indexes = sorted(i["name"] for t in tables for i in inspector.get_indexes(t))
        with engine.connect() as connection:
            revision = migrate._revision(connection)
    finally:
        engine.dispose()
    return revision, tables, indexes


def behind_message(url: str) -> str:
    return (
        f"error: the store {masked(url)} is at revision {PREVIOUS}, this nurture needs revision "
        f"{migrate.head()}: run `nurture db upgrade`\n"
    )


@pytest.fixture
def behind(project: Path, store_url: str) -> str:
    """A project with one sequence whose store is one migration behind the code."""
    write(project, "welcome.yaml", sequence("Welcome", step("Hi"), funnels=["website"]))
    migrate.upgrade(store_url, PREVIOUS)
    return store_url


@pytest.mark.parametrize("command", READS, ids=" ".join)
def test_a_read_on_a_store_behind_says_to_upgrade_and_changes_nothing(run, behind, command):
    before = schema(behind)
    result = run("--database-url", behind, *command)
    assert result.exit_code == 1, result.output
    assert result.stderr == behind_message(behind) and result.stdout == ""
    assert schema(behind) == before


def test_db_current_on_a_store_behind_says_so_and_changes_nothing(run, behind):
    before = schema(behind)
    result = run("--database-url", behind, "db", "current")
    assert result.exit_code == 0, result.output
    assert f"current: {PREVIOUS}" in result.stdout
    assert f"head:    {migrate.head()} (behind: run `nurture db upgrade`)" in result.stdout
    assert schema(behind) == before


@pytest.mark.parametrize("command", STORELESS, ids=" ".join)
def test_a_read_without_the_store_works_beside_a_store_behind_and_leaves_it(run, behind, command):
    before = schema(behind)
    result = run("--database-url", behind, *command)
    assert result.exit_code == 0, result.output
    assert schema(behind) == before


def test_plan_on_a_fresh_project_shows_the_plan_and_makes_no_store(run, project: Path):
    write(project, "welcome.yaml", sequence("Welcome", step("Hi")))
    result = run("plan")
    assert result.exit_code == 0, result.output
    assert "+ create Welcome" in result.stdout and "1 to create" in result.stdout
    for command in READS:
        assert run(*command).exit_code in (0, 1)  # a lead or sequence not found is an error
    assert sorted(path.name for path in project.iterdir()) == ["nurture.toml", "sequences"]


def test_reads_of_an_empty_database_find_nothing_and_leave_it_empty(run, project, postgres_url):
    write(project, "welcome.yaml", sequence("Welcome", step("Hi")))
    assert "1 to create" in run("--database-url", postgres_url, "plan").stdout
    listed = run("--database-url", postgres_url, "leads", "list", "--json")
    assert listed.exit_code == 0 and listed.stdout.strip() == "[]"
    assert schema(postgres_url) == (None, [], [])


def test_upgrade_sql_prints_the_ddl_and_changes_nothing(run, behind):
    before = schema(behind)
    result = run("--database-url", behind, "db", "upgrade", "--sql")
    assert result.exit_code == 0, result.output
    bytewise = 'ALTER TABLE lead_key ALTER COLUMN kind TYPE VARCHAR(20) COLLATE "C"'
    if behind.startswith("postgresql"):  # 0020, the newest: lead_key compared bytewise
        assert bytewise in result.stdout
    else:  # which changes nothing on SQLite
        assert "ALTER TABLE" not in result.stdout
    assert "DROP COLUMN id" not in result.stdout  # 0019, which the store has already
    assert f"version_num='{migrate.head()}'" in result.stdout
    assert "CREATE TABLE lead (" not in result.stdout  # from the store's revision on
    assert schema(behind) == before


def test_upgrade_sql_of_a_store_not_made_yet_is_the_whole_schema(run, project, store_url):
    result = run("--database-url", store_url, "db", "upgrade", "--sql")
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE alembic_version" in result.stdout and "CREATE TABLE lead" in result.stdout
    if store_url.startswith("sqlite"):
        assert not (project / "nurture.db").exists()
    else:
        assert schema(store_url) == (None, [], [])


def test_upgrade_sql_of_a_current_store_is_empty(run, project, store):
    result = run("--database-url", store.url, "db", "upgrade", "--sql")
    assert result.exit_code == 0 and result.stdout == ""


def test_the_printed_sql_upgrades_the_store(run, project, postgres_url):
    migrate.upgrade(postgres_url, PREVIOUS)
    ddl = run("--database-url", postgres_url, "db", "upgrade", "--sql").stdout
    engine = sqlalchemy.create_engine(normalize_url(postgres_url))
    with engine.begin() as connection:  # what the DBA does with it
        connection.exec_driver_sql(ddl)
    engine.dispose()
    assert migrate.current(postgres_url) == migrate.head()


def test_a_write_with_auto_migrate_off_refuses_with_the_hint(run, behind, monkeypatch):
    monkeypatch.setenv("NURTURE_AUTO_MIGRATE", "false")
    before = schema(behind)
    result = run("--database-url", behind, "apply", "--yes")
    assert result.exit_code == 1
    assert result.stderr == behind_message(behind)
    assert schema(behind) == before


def test_a_write_on_postgres_does_not_migrate_by_default(run, project, postgres_url):
    write(project, "welcome.yaml", sequence("Welcome", step("Hi")))
    result = run("--database-url", postgres_url, "apply", "--yes")
    assert result.exit_code == 1
    assert "is empty (no revision)" in result.stderr
    assert "run `nurture db upgrade`" in result.stderr
    assert schema(postgres_url) == (None, [], [])


def test_a_write_with_auto_migrate_on_migrates(run, behind, monkeypatch):
    monkeypatch.setenv("NURTURE_AUTO_MIGRATE", "true")
    result = run("--database-url", behind, "apply", "--yes")
    assert result.exit_code == 0, result.output
    assert migrate.current(behind) == migrate.head()


def test_a_write_on_sqlite_migrates_by_default(run, project: Path):
    write(project, "welcome.yaml", sequence("Welcome", step("Hi")))
    assert run("apply", "--yes").exit_code == 0
    assert migrate.current(f"sqlite:///{project / 'nurture.db'}") == migrate.head()


def test_auto_migrate_can_be_set_in_nurture_toml(run, project: Path, postgres_url):
    (project / "nurture.toml").write_text("auto_migrate = true\n")
    write(project, "welcome.yaml", sequence("Welcome", step("Hi")))
    assert run("--database-url", postgres_url, "apply", "--yes").exit_code == 0
    assert migrate.current(postgres_url) == migrate.head()


def test_the_revisions_read_from_the_file_names_are_alembics():
    scripts = migrate.scripts()
    assert migrate.head() == scripts.get_current_head()
    walked = [script.revision for script in scripts.walk_revisions()]
    assert list(migrate.revisions()) == walked[::-1]
