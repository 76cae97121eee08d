"""One convention for every command: --json prints what a command changed as its show/list
prints it, results on stdout and notes on stderr, -h, help panels, examples, env vars, `-`."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from builders import sequence, step, write

import nurture
from nurture.cli.app import app

sys.path.insert(0, str(Path(__file__).parent.parent / "docs" / "hooks"))
from reference import _help_and_examples  # noqa: E402 - the docs' own reading of the help

WELCOME = sequence("Welcome", step("Hello"), step("Later", delay_days=1), funnels=["Web"])
TASK = step("Call", "create_task")


@pytest.fixture
def nurture_cli(run_store, project):
    """`nurture ...` on a project with the Welcome sequence applied, on SQLite and Postgres."""
    write(project, "welcome.yaml", WELCOME)
    assert run_store("apply", "--yes").exit_code == 0
    return run_store


def as_json(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def add_ana(nurture_cli) -> dict:
    args = ("leads", "add", "--funnel", "web", "--name", "Ana Ruiz", "--email", "ana@example.com")
    return as_json(nurture_cli(*args, "--json"))


def leaf_commands() -> list[tuple[str, object]]:
    """Every command a user can run, by its full name (`leads update`)."""
    found = []

    root = typer.main.get_command(app)
    context = root.make_context("nurture", [], resilient_parsing=True)

    def walk(command: Any, path: str) -> None:
        if not hasattr(command, "list_commands"):
            found.append((path, command))
            return
        for name in command.list_commands(context):  # a lazy group loads each as it is asked
            walk(command.get_command(context, name), f"{path} {name}".strip())

    walk(root, "")
    return found


def test_a_lead_changed_by_any_command_prints_as_leads_show_json_prints_it(nurture_cli):
    added = add_ana(nurture_cli)
    assert added["created"] is True and added["decision"]["sequence"] == "Welcome"
    shown = as_json(nurture_cli("leads", "show", "ana@example.com", "--json"))
    assert {key: added[key] for key in shown} == shown  # add says more: created and the decision
    for command in (
        ("leads", "update", "1", "--score", "80"),
        ("leads", "opt-out", "1", "-c", "sms"),
        ("leads", "opt-in", "1", "-c", "sms"),
        ("leads", "inbound", "1", "--text", "hello"),
        ("leads", "convert", "1"),
    ):
        changed = as_json(nurture_cli(*command, "--json"))
        assert changed == as_json(nurture_cli("leads", "show", "1", "--json")), command
    assert changed["score"] == 80 and changed["converted_at"] is not None


def test_an_enrollment_changed_prints_as_enrollments_list_json_prints_it(nurture_cli):
    enrollment_id = add_ana(nurture_cli)["enrollments"][0]["id"]
    for action, status in (("pause", "paused"), ("resume", "active"), ("stop", "stopped")):
        changed = as_json(nurture_cli("enrollments", action, str(enrollment_id), "--json"))
        [listed] = as_json(nurture_cli("enrollments", "list", "--json"))
        assert changed == listed and changed["status"] == status


def test_a_sequence_changed_prints_as_sequences_show_json_prints_it(nurture_cli, project):
    disabled = as_json(nurture_cli("sequences", "disable", "welcome", "--json"))
    assert disabled == as_json(nurture_cli("sequences", "show", "welcome", "--json"))
    assert disabled["active"] is False
    copy = as_json(nurture_cli("sequences", "duplicate", "welcome", "Welcome B", "--json"))
    assert copy == as_json(nurture_cli("sequences", "show", "welcome-b", "--json"))
    gone = as_json(nurture_cli("sequences", "delete", "welcome-b", "--yes", "--json"))
    assert gone["name"] == "Welcome B" and not (project / "sequences" / "welcome-b.yaml").exists()


def test_funnels_assigned_print_as_funnels_list_json_prints_them(nurture_cli):
    assigned = as_json(nurture_cli("funnels", "assign", "-s", "welcome", "-f", "Ads", "--json"))
    listed = as_json(nurture_cli("funnels", "list", "--json"))
    assert assigned == [row for row in listed if row["slug"] == "ads"]
    assert [s["name"] for s in assigned[0]["sequences"]] == ["Welcome"]
    left = as_json(nurture_cli("funnels", "unassign", "-s", "welcome", "-f", "Ads", "--json"))
    assert left == [{"name": "Ads", "slug": "ads", "sequences": []}]


def test_a_task_done_and_a_token_revoked_print_as_their_lists_print_them(nurture_cli, project):
    write(project, "welcome.yaml", sequence("Welcome", TASK, funnels=["Web"]))
    nurture_cli("apply", "--yes")
    add_ana(nurture_cli)
    assert as_json(nurture_cli("run", "--once", "--json"))["steps"] == 1
    done = as_json(nurture_cli("tasks", "done", "1", "--json"))
    assert [done] == as_json(nurture_cli("tasks", "list", "--all", "--json"))
    nurture_cli("tokens", "create", "landing", "--scope", "ingest")
    revoked = as_json(nurture_cli("tokens", "revoke", "landing", "--json"))
    assert [revoked] == as_json(nurture_cli("tokens", "list", "--json"))
    assert revoked["revoked_at"] is not None


def test_db_upgrade_json_is_db_current_json_and_the_revision_before(nurture_cli):
    upgraded = as_json(nurture_cli("db", "upgrade", "--json"))
    current = as_json(nurture_cli("db", "current", "--json"))
    assert upgraded == current | {"before": current["current"]}
    assert current["up_to_date"] is True


def test_plan_json_on_an_invalid_file_prints_the_diagnostics_validate_json_prints(
    nurture_cli, project
):
    (project / "sequences" / "broken.yaml").write_text("name: Broken\nsteps:\n  - nme: x\n")
    validated = nurture_cli("validate", "--json")
    for command in ("plan", "apply"):
        planned = nurture_cli(command, "--json")
        assert planned.exit_code == 1 and planned.stderr == ""
        shown = json.loads(planned.stdout)
        assert shown == {"valid": False, "diagnostics": json.loads(validated.stdout)["diagnostics"]}
        assert shown["diagnostics"][0]["file"] == "sequences/broken.yaml"


def test_an_action_reports_on_stderr_and_leaves_stdout_to_results(nurture_cli):
    added = nurture_cli("leads", "add", "--funnel", "web", "--name", "Ana Ruiz")
    assert added.stdout == "" and added.stderr.startswith(
        "Added lead 1 Ana Ruiz.\nEnrolled in Welcome"
    )
    updated = nurture_cli("leads", "update", "1", "--score", "5")
    assert updated.stdout == "" and updated.stderr == "Updated lead 1 Ana Ruiz.\n"
    paused = nurture_cli("enrollments", "pause", "1")
    assert paused.stdout == "" and paused.stderr == "enrollment 1: paused (step hello)\n"
    listed = nurture_cli("leads", "list")
    assert "Ana Ruiz" in listed.stdout and listed.stderr == ""


def test_every_command_takes_json_and_shows_examples_in_its_help():
    lacking_json = [path for path, command in leaf_commands() if "json" not in _params(command)]
    assert lacking_json == ["serve"]  # a server: it prints its log until stopped
    lacking_examples = [
        path for path, command in leaf_commands() if "Examples:" not in command.help
    ]
    assert lacking_examples == []


def test_every_example_in_the_help_parses_as_its_command():
    root = typer.main.get_command(app)
    for path, command in leaf_commands():
        for example in _help_and_examples(command.help)[1]:
            words = shlex.split(example, comments=True)
            words = words[words.index("nurture") + 1 :]  # after a pipe: `cat x | nurture ...`
            words = words[
                : next((i for i, w in enumerate(words) if w in ("<", ">", "|")), len(words))
            ]
            assert words[: len(path.split())] == path.split(), example
            parent = root.make_context("nurture", list(path.split()[:1]), resilient_parsing=True)
            command.make_context(path, words[len(path.split()) :], parent=parent)


def _params(command: object) -> set[str]:
    return {param.name for param in command.params}


def test_dash_h_is_help_everywhere_and_the_commands_are_grouped():
    top = nurture.invoke(["-h"])
    assert top.exit_code == 0
    for panel in ("Sequences", "Leads", "Running", "Setup", "--install-completion"):
        assert panel in top.stdout
    for path, _ in leaf_commands():
        shown = nurture.invoke([*path.split(), "-h"])
        assert shown.exit_code == 0 and "Usage: nurture " + path in " ".join(shown.stdout.split())


def test_each_global_option_has_an_environment_variable(project: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = nurture.invoke(["config", "show", "--json"], env={"NURTURE_PROJECT": str(project)})
    assert found.exit_code == 0, found.output
    url = f"sqlite:///{tmp_path / 'other.db'}"
    shown = nurture.invoke(["db", "current", "--json"], env={"NURTURE_DATABASE_URL": url})
    assert json.loads(shown.stdout)["store"] == url
    (project / "nurture.toml").write_text("timezone = 'Mars/Olympus'\n")
    debug = nurture.invoke(["validate"], env={"NURTURE_DEBUG": "1"})
    assert "Traceback (most recent call last)" in debug.stderr


def test_a_dash_reads_leads_and_sequence_files_from_stdin(nurture_cli):
    csv = "name,email\nBo Diaz,bo@example.com\n"
    imported = as_json(nurture_cli("leads", "import", "-", "--funnel", "web", "--json", input=csv))
    assert (imported["created"], imported["enrolled"]) == (1, 1)
    checked = nurture_cli("validate", "-", input="name: [unclosed\n")
    assert checked.exit_code == 1 and checked.stdout.startswith("<stdin>:")
    valid = (
        "name: Hi\nsteps:\n  - {name: Hello, action_type: send_sms, action_config: {message: Hi}}\n"
    )
    checked = nurture_cli("validate", "-", input=valid)
    assert checked.exit_code == 0 and checked.stderr.startswith("✓ 1 sequence valid"), (
        checked.output
    )


def test_the_shell_completes_commands_and_subcommands(project: Path):
    def complete(words: str) -> list[str]:
        env = dict(os.environ, _NURTURE_COMPLETE="complete_bash", COMP_WORDS=words)
        env["COMP_CWORD"] = str(len(words.split()) - 1)
        code = "from nurture.cli.app import main; main()"
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        return done.stdout.split()

    assert complete("nurture le") == ["leads"]
    assert complete("nurture leads up") == ["update"]
    assert "--json" in complete("nurture tasks done --j")
