"""Shared fixtures: a clean environment, the CLI runner, a temp project."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nurture.cli.app import app

for _name in list(os.environ):
    if _name.startswith("NURTURE_") and _name != "NURTURE_TEST_DATABASE_URL":
        del os.environ[_name]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Callable[..., "Result"]:
    """Run `nurture ARGS...` in-process, as a user would from the project directory."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, cwd: Path | None = None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return invoke


Result = object


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty nurture project (nurture.toml, sequences/) as the working directory."""
    (tmp_path / "nurture.toml").write_text('sequences_dir = "sequences"\ntimezone = "UTC"\n')
    (tmp_path / "sequences").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path
