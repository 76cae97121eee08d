"""Start-up: help, the version and validate import only what they use (the structure, not the
clock: bench/cli.py times them)."""

import json
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import holidays
import pytest
import typer.main

import nurture
from nurture.cli.app import COMMANDS, app
from nurture.spec import window
from nurture.spec.window import HOLIDAY_COUNTRIES

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["sqlalchemy", "alembic", "fastapi", "twilio", "slack_sdk", "phonenumbers", "holidays"]
HEAVY += ["uvicorn", "apscheduler", "sqlmodel"]

# Runs `nurture ARGS` in this process, then prints the modules it imported, one a line.
MODULES_AFTER = """
import sys
from nurture.cli.app import app
try:
    app(sys.argv[1:], prog_name="nurture")
except SystemExit as done:
    code = done.code
print("\\n".join(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""


def imported(*args: str, cwd: Path) -> set[str]:
    """The top-level packages `nurture ARGS` imports, run in a fresh interpreter."""
    return {name.split(".")[0] for name in modules(*args, cwd=cwd)}


def modules(*args: str, cwd: Path) -> set[str]:
    """Every module `nurture ARGS` imports, run in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", MODULES_AFTER, *args], cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return set(done.stderr.splitlines())


@pytest.fixture
def five(project: Path) -> Path:
    """A project with the five example sequences of this repository."""
    for path in sorted((ROOT / "sequences").glob("*.yaml")):
        shutil.copy(path, project / "sequences")
    assert len(list((project / "sequences").iterdir())) == 5
    return project


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["validate"],
        *([name, "--help"] for name in COMMANDS),
        ["leads", "add", "--help"],
        ["sequences", "show", "--help"],
        ["enrollments", "settle", "--help"],
        ["db", "upgrade", "--help"],
    ],
    ids=" ".join,
)
def test_help_the_version_and_validate_import_no_heavy_library(five: Path, args: list[str]):
    assert sorted(set(HEAVY) & imported(*args, cwd=five)) == []


def test_validate_reads_what_booking_allows_from_the_settings_alone(five: Path):
    # bookable() asks the settings, not the booking rules (itsdangerous, the matching rules)
    assert "nurture.rules.booking" not in modules("validate", cwd=five)


def test_plan_of_a_project_without_a_store_yet_imports_no_store_library(five: Path):
    assert sorted(set(HEAVY) & imported("plan", cwd=five)) == []
    assert not (five / "nurture.db").exists()


def test_plan_of_an_applied_store_reads_it_without_the_orm(five: Path, run):
    assert run("apply", "--yes").exit_code == 0
    loaded = modules("plan", cwd=five)
    assert {"sqlalchemy", "nurture.project.applied"} <= loaded
    assert sorted(loaded & {"sqlalchemy.orm", "sqlmodel", "nurture.store.tables"}) == []


def test_the_listing_shows_each_command_as_its_own_help_does():
    group = typer.main.get_command(app)
    context = group.context_class(group, info_name="nurture")
    for name, entry in COMMANDS.items():
        command = group.get_command(context, name)  # imported now
        assert (command.short_help or command.help or "").split("\n\n")[0] == entry.help, name


def test_the_listing_is_the_same_before_and_after_the_commands_load():
    lazy = typer.main.get_command(app)
    loaded = typer.main.get_command(app)
    context = loaded.context_class(loaded, info_name="nurture")
    for name in COMMANDS:
        loaded.get_command(context, name)
    assert set(loaded.commands) == set(COMMANDS) and lazy.commands == {}
    assert _help(lazy) == _help(loaded)


def _help(group: typer.core.TyperGroup) -> str:
    context = group.context_class(group, info_name="nurture", terminal_width=100)
    return context.get_help()


def test_a_mistyped_command_still_gets_a_suggestion(run):
    result = run("sequnces", "list")
    assert result.exit_code == 2 and "Did you mean 'sequences'?" in result.output


def test_the_saved_holiday_countries_are_the_installed_calendars():
    saved = json.loads(HOLIDAY_COUNTRIES.read_text(encoding="utf-8"))
    current = "run `python scripts/holiday_countries.py` after a holidays upgrade"
    assert saved["holidays"] == version("holidays"), current
    assert window._holidays_version() == version("holidays")  # read from its dist-info folder
    assert saved["countries"] == holidays.list_supported_countries(), current


def test_the_version_is_the_packages():
    result = nurture.invoke(["--version"])
    assert result.exit_code == 0 and result.stdout == f"nurture {version('nurture')}\n"
