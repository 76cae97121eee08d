"""The docs' examples are working sequences, and the docs site builds strictly from the code."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
README = ROOT / "README.md"


def yaml_blocks(page: Path) -> list[str]:
    """The ```yaml blocks of a markdown page."""
    return re.findall(r"```yaml\n(.*?)```", page.read_text(encoding="utf-8"), re.S)


def annotated_example() -> str:
    """The annotated sequence of Getting started (the one that starts with its schema line)."""
    [example] = [b for b in yaml_blocks(GETTING_STARTED) if b.startswith("# yaml-language-server")]
    return example


def readme_example() -> str:
    """The README's one sequence."""
    [example] = [block for block in yaml_blocks(README) if block.startswith("name:")]
    return example


def validates_and_passes(run, project: Path, name: str, sequence: str, *flags: str) -> None:
    (project / "sequences" / f"{name}.yaml").write_text(sequence)
    validated = run("validate", *flags)
    assert validated.exit_code == 0, validated.output
    assert "error" not in validated.output and "[unreachable]" not in validated.output
    tested = run("test")
    assert tested.exit_code == 0, tested.output
    assert "1 passed in" in tested.output


def test_the_annotated_sequence_of_getting_started_validates_and_passes_its_test_case(
    project: Path, run
):
    validates_and_passes(run, project, "consultation-follow-up", annotated_example())


def test_the_readme_sequence_validates_strictly_and_passes_its_test_case(project: Path, run):
    validates_and_passes(run, project, "new-lead-welcome", readme_example(), "--strict")


def test_the_readme_stays_short_and_links_only_to_pages_that_exist():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    assert links and all((ROOT / link).exists() for link in links), links


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None,
    reason="mkdocs is not installed (make install adds the docs extra): the docs build is not checked",
)
def test_the_docs_site_builds_strictly_with_every_command_and_endpoint(tmp_path: Path):
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("nurture leads add", "nurture enrollments settle", "nurture channels check"):
        assert f'id="{command.replace(" ", "-")}"' in cli, command
    http = (site / "reference" / "http-api" / "index.html").read_text(encoding="utf-8")
    assert "POST /api/leads" in http and "/webhooks/twilio/inbound" in http
    schema = (site / "reference" / "sequence-format" / "index.html").read_text(encoding="utf-8")
    assert "trigger_conditions" in schema and "triggerConditions" in schema
    pages = (site / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis.com" not in pages and "cdn.jsdelivr" not in pages
