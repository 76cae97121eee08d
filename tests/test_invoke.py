"""nurture.invoke: a command run from Python answers as the shell does, and leaves the process as it was."""

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import nurture
from nurture.cli.context import state

LEAD_TEST = ["test", "Welcome", "--lead", "-", "--start", "2025-01-06T09:00:00Z", "--json"]
WELCOME = """\
name: Welcome
steps:
  - name: Hello
    action_type: send_sms
    action_config: {message: "Hi {{ lead.first_name }}"}
"""


def test_a_command_returns_its_exit_code_and_output(project: Path):
    (project / "sequences" / "welcome.yaml").write_text(WELCOME)
    result = nurture.invoke(["validate"])
    assert result.exit_code == 0, result.output
    assert result.stderr == "✓ 1 sequence valid\n" and result.stdout == ""


def test_a_known_error_is_exit_1_and_a_message_on_stderr_never_an_exception(tmp_path: Path):
    result = nurture.invoke(["--project", str(tmp_path), "validate"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no nurture.toml in ") and result.stdout == ""
    assert result.exception is None and "Traceback" not in result.output


def test_a_usage_error_is_exit_2(project: Path):
    result = nurture.invoke(["no-such-command"])
    assert result.exit_code == 2 and "No such command" in result.stderr


def test_input_is_the_commands_stdin(project: Path):
    (project / "sequences" / "welcome.yaml").write_text(WELCOME)
    result = nurture.invoke(LEAD_TEST, input="name: Ana Ruiz\n")
    assert result.exit_code == 0, result.output
    assert '"body": "Hi Ana"' in result.stdout


def test_env_is_seen_by_the_command_and_gone_afterwards(project: Path):
    result = nurture.invoke(["config", "show"], env={"NURTURE_TIMEZONE": "Asia/Tokyo"})
    assert result.exit_code == 0, result.output
    assert "Asia/Tokyo" in result.stdout
    assert "NURTURE_TIMEZONE" not in os.environ


def test_with_debug_the_escaped_error_is_kept_and_its_traceback_shown(tmp_path: Path):
    (tmp_path / "nurture.toml").write_text("timezone = 'Mars/Olympus'\n")
    result = nurture.invoke(["--debug", "--project", str(tmp_path), "plan"])
    assert result.exit_code == 1 and result.exception is not None
    assert "Traceback (most recent call last)" in result.stderr


def test_the_cli_options_logging_and_signals_are_as_they_were(project: Path):
    state.configure(state.options)
    before = (state.options, dict(state.__dict__))
    sigint = signal.getsignal(signal.SIGINT)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.INFO)
    nurture.invoke(["--database-url", "sqlite:///elsewhere.db", "--debug", "status"])
    assert (state.options, dict(state.__dict__)) == before
    assert logging.getLogger("apscheduler.scheduler").level == logging.INFO
    assert signal.getsignal(signal.SIGINT) is sigint


def test_importing_nurture_does_not_load_the_command_line():
    code = "import sys, nurture; print('typer' in sys.modules, callable(nurture.invoke))"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["False", "True"]
