"""`nurture init` writes a project that validates, plans and applies on its own."""

import re
from pathlib import Path

import pytest


def test_init_writes_a_working_project(run, tmp_path: Path, monkeypatch):
    target = tmp_path / "coaching"
    result = run("init", str(target))
    assert result.exit_code == 0, result.output
    assert (target / "nurture.toml").is_file()
    assert (
        "nurture.db" in (target / ".gitignore").read_text()
        and ".env" in (target / ".gitignore").read_text()
    )
    assert len(list((target / "sequences").glob("*.yaml"))) == 2
    monkeypatch.chdir(target)
    validated = run("validate", "--strict")  # the two examples cover every funnel they name
    assert validated.exit_code == 0 and "warning" not in validated.output, validated.output
    applied = run("apply", "--yes")
    assert applied.exit_code == 0, applied.output
    assert (target / "nurture.db").is_file()
    assert run("plan", "--detailed-exitcode").exit_code == 0


def test_init_refuses_to_overwrite_a_project(run, tmp_path: Path):
    run("init", str(tmp_path))
    again = run("init", str(tmp_path))
    assert again.exit_code == 1
    assert "already exists" in again.stderr


def test_commands_outside_a_project_say_so(run, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("plan")
    assert result.exit_code == 1
    assert "no nurture.toml" in result.stderr and "nurture init" in result.stderr
    assert "Traceback" not in result.output


def test_init_keeps_an_existing_gitignore_and_adds_what_it_needs(run, tmp_path: Path):
    (tmp_path / ".gitignore").write_text("node_modules/")
    result = run("init", str(tmp_path))
    assert result.exit_code == 0
    assert (tmp_path / ".gitignore").read_text().splitlines() == [
        "node_modules/",
        "nurture.db",
        "nurture.db-wal",
        "nurture.db-shm",
        ".env",
    ]
    assert (tmp_path / "schema" / "sequence.schema.json").is_file()  # the examples' $schema line


def test_init_into_a_file_is_a_clear_error(run, tmp_path: Path):
    (tmp_path / "file").write_text("x")
    result = run("init", str(tmp_path / "file"))
    assert result.exit_code == 1 and "Not a directory" in result.stderr


ROOT = Path(__file__).parent.parent


def listed_files(page: Path) -> set[str]:
    """The files a page's `my-nurture/` block lists (the first word of each line below it)."""
    [block] = re.findall(r"```\nmy-nurture/[^\n]*\n(.*?)```", page.read_text(), re.S)
    return {line.split()[0] for line in block.splitlines() if line.strip()}


def written_files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md"])
def test_the_docs_list_exactly_what_init_writes(run, tmp_path: Path, page: str):
    assert run("init", str(tmp_path / "my-nurture")).exit_code == 0
    assert listed_files(ROOT / page) == written_files(tmp_path / "my-nurture")


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md"])
def test_the_quick_start_creates_the_project_outside_the_clone(page: str):
    text = (ROOT / page).read_text()
    [command] = re.findall(r"^nurture init (\S+) && cd (\S+)", text, re.M)
    assert command[0] == command[1] and command[0].startswith(("../", "~/", "/"))


def test_init_inside_nurtures_own_clone_is_refused_and_writes_nothing(run, monkeypatch):
    monkeypatch.chdir(ROOT)  # the quick start's first command, run where `make install` ran
    result = run("init", "my-nurture")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: my-nurture is inside nurture's own source tree ({ROOT}); create the project "
        f"outside it, e.g. `nurture init {ROOT.parent / 'my-nurture'}`\n"
    )
    assert not (ROOT / "my-nurture").exists()
