"""`nurture db upgrade` and `nurture db current`, on SQLite and Postgres."""

import json
from pathlib import Path

from nurture.store import migrate


def test_upgrade_brings_an_empty_store_to_head_once(project: Path, run_store):
    before = run_store("db", "current", "--json")
    assert before.exit_code == 0, before.output
    status = json.loads(before.stdout)
    assert status["current"] is None and status["up_to_date"] is False
    assert status["head"] == migrate.head()

    first = run_store("db", "upgrade")
    assert first.exit_code == 0, first.output
    assert f"from revision (empty) to {migrate.head()}" in first.stderr and first.stdout == ""

    again = run_store("db", "upgrade")
    assert f"already at revision {migrate.head()}" in again.stderr

    after = json.loads(run_store("db", "current", "--json").stdout)
    assert after["current"] == migrate.head() and after["up_to_date"] is True


def test_current_says_what_to_do(project: Path, run_store):
    behind = run_store("db", "current")
    assert "current: (empty)" in behind.stdout and "run `nurture db upgrade`" in behind.stdout
    run_store("db", "upgrade")
    assert "(up to date)" in run_store("db", "current").stdout


def test_the_default_store_is_nurture_db_beside_nurture_toml(project: Path, run):
    assert run("db", "upgrade").exit_code == 0
    assert migrate.current(f"sqlite:///{project / 'nurture.db'}") == migrate.head()
    shown = run("db", "current").stdout
    assert str(project / "nurture.db") in shown


def test_current_does_not_create_the_database(project: Path, run):
    assert run("db", "current").exit_code == 0
    assert not (project / "nurture.db").exists()


def test_an_unreachable_store_is_one_line_on_stderr(project: Path, run):
    result = run("--database-url", "postgres://coach:s3cret@127.0.0.1:1/nurture", "db", "upgrade")
    assert result.exit_code == 1
    assert "error: cannot use the store postgres://coach:***@127.0.0.1:1/nurture: " in result.stderr
    assert result.stderr.count("\n") == 1
    assert "s3cret" not in result.output and "Traceback" not in result.output
