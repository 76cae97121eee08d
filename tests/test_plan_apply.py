"""plan and apply from the command line, on SQLite and Postgres."""

import json
import os
from pathlib import Path

import pytest
import yaml
from builders import SEED_WARM_LEAD, sequence, step, write

from nurture.project.plan import step_changes
from nurture.spec.models import SequenceSpec


@pytest.fixture
def nurture(run_store, project: Path):
    """`nurture ARGS` in a temp project, against this test's store (SQLite, then Postgres)."""
    return run_store


def plan_json(nurture) -> dict:
    result = nurture("plan", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_seed_sequence_applies_unchanged(nurture, project):
    write(project, "warm.yaml", SEED_WARM_LEAD)
    assert nurture("validate").exit_code == 0
    result = nurture("apply", "--yes")
    assert result.exit_code == 0, result.output
    assert "+ create Warm Lead Welcome (sequences/warm.yaml)" in result.stdout
    shown = json.loads(nurture("sequences", "show", "warm-lead-welcome", "--json").stdout)
    assert shown["definition"]["trigger_conditions"]["lead_score"] == {"min": 30, "max": 70}
    assert shown["definition"]["steps"][0]["id"] == "welcome-message"


def test_apply_is_idempotent_and_detailed_exitcode_follows_terraform(nurture, project):
    write(project, "a.yaml", sequence("Alpha"))
    assert nurture("plan", "--detailed-exitcode").exit_code == 2
    assert nurture("apply", "--yes").exit_code == 0
    again = nurture("apply", "--yes")
    assert again.exit_code == 0
    assert "No changes." in again.stdout
    assert nurture("plan", "--detailed-exitcode").exit_code == 0


def test_update_lists_fields_and_steps_and_records_a_version(nurture, project):
    write(project, "a.yaml", sequence("Alpha", step("Welcome"), step("Nudge"), step("Last")))
    nurture("apply", "--yes")
    changed = step("Welcome", delay_hours=2)
    changed["action_config"]["message"] = "Changed"
    write(project, "a.yaml", sequence("Alpha", step("Last"), changed, step("Added"), priority=5))
    result = nurture("plan", "--detailed-exitcode")
    assert result.exit_code == 2
    assert "~ update Alpha (sequences/a.yaml) (new version)" in result.stdout
    assert "priority: 0 → 5" in result.stdout
    assert "step welcome: changed (delay_hours, action_config)" in result.stdout
    assert "step added: added" in result.stdout
    assert "step nudge: removed" in result.stdout
    assert "step last: moved" in result.stdout
    nurture("apply", "--yes")
    shown = json.loads(nurture("sequences", "show", "Alpha", "--json").stdout)
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert [s["id"] for s in shown["definition"]["steps"]] == ["last", "welcome", "added"]


def test_active_flag_and_funnels_change_no_version(nurture, project):
    write(project, "a.yaml", sequence("Alpha", funnels=["Instagram Ads"]))
    nurture("apply", "--yes")
    write(project, "a.yaml", sequence("Alpha", funnels=["Website Form"], active=False))
    change = plan_json(nurture)["sequences"][0]
    assert change["action"] == "update" and change["new_version"] is False
    assert {f["field"] for f in change["fields"]} == {"active", "funnels"}
    said = nurture("plan").stdout  # a list's change says what was added and removed
    assert '      funnels: + "website-form", - "instagram-ads"\n' in said
    nurture("apply", "--yes")
    shown = json.loads(nurture("sequences", "show", "Alpha", "--json").stdout)
    assert shown["version"] == 1 and shown["active"] is False
    assert shown["funnels"] == ["Website Form"]


def test_invalid_file_leaves_the_store_untouched(nurture, project):
    write(project, "a.yaml", sequence("Alpha"))
    write(
        project,
        "b.yaml",
        "name: Beta\nsteps:\n  - name: x\n    action_type: send_sms\n    action_config: {}\n",
    )
    result = nurture("apply", "--yes")
    assert result.exit_code == 1
    assert "sequences/b.yaml:5:" in result.output
    assert json.loads(nurture("sequences", "list", "--json").stdout) == []


def test_removed_file_is_drift_until_pruned(nurture, project):
    path = write(project, "a.yaml", sequence("Alpha"))
    write(project, "b.yaml", sequence("Beta"))
    nurture("apply", "--yes")
    path.unlink()
    result = nurture("plan", "--detailed-exitcode")
    assert result.exit_code == 0
    assert "! drift  Alpha" in result.stdout and "only in the store" in result.stdout
    refused = nurture("apply", "--prune")
    assert refused.exit_code == 1 and "pass --yes" in refused.stderr
    assert nurture("plan", "--prune", "--detailed-exitcode").exit_code == 2
    assert nurture("apply", "--prune", "--yes").exit_code == 0
    names = [row["name"] for row in json.loads(nurture("sequences", "list", "--json").stdout)]
    assert names == ["Beta"]


def test_a_deleted_sequence_comes_back_with_its_history(nurture, project):
    path = write(project, "a.yaml", sequence("Alpha"))
    nurture("apply", "--yes")
    path.unlink()
    nurture("apply", "--prune", "--yes")
    write(project, "a.yaml", sequence("Alpha", step("Other")))
    assert nurture("apply", "--yes").exit_code == 0
    shown = json.loads(nurture("sequences", "show", "Alpha", "--json").stdout)
    assert [v["version"] for v in shown["versions"]] == [1, 2]


def test_step_changes_match_steps_by_id():
    old = [{"id": "a", "x": 1}, {"id": "b", "x": 1}, {"id": "c", "x": 1}]
    new = [{"id": "c", "x": 1}, {"id": "a", "x": 2}, {"id": "d", "x": 1}]
    changes = {(c.step_id, c.kind) for c in step_changes(old, new)}
    assert changes == {
        ("c", "moved"),
        ("a", "changed"),
        ("a", "moved"),
        ("d", "added"),
        ("b", "removed"),
    }


def test_applies_started_together_take_turns(project, store_url):
    import subprocess
    import sys

    write(project, "a.yaml", sequence("Alpha"))
    write(project, "b.yaml", sequence("Beta"))
    command = [
        sys.executable,
        "-m",
        "nurture",
        "--database-url",
        store_url,
        "apply",
        "--yes",
        "--json",
    ]
    env = os.environ | {"NURTURE_AUTO_MIGRATE": "true"}  # they migrate a fresh Postgres too
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    runs = [subprocess.Popen(command, cwd=project, env=env, **pipes) for _ in range(4)]
    results = [(p.wait(timeout=60), *p.communicate()) for p in runs]
    assert [code for code, _, err in results] == [0, 0, 0, 0], [err for _, _, err in results]
    applied = [json.loads(out)["applied"] for _, out, _ in results]
    assert applied.count(True) == 1


def test_upgrading_nurture_keeps_every_applied_fingerprint():
    """The fingerprint of a file written for the first format never changes: a new setting
    with a default (ADDED_LATER) must not make every applied sequence look changed to `plan`."""
    seed = SequenceSpec.model_validate(yaml.safe_load(SEED_WARM_LEAD))
    assert seed.fingerprint() == "ed83cd92a52be104d1d1e2a5627f291be04fd14a620cefd10fd55a31ae0fd8d5"
    assert "stop_on_reply" not in seed.definition()
    replying = SequenceSpec.model_validate(yaml.safe_load(SEED_WARM_LEAD) | {"stopOnReply": True})
    assert replying.definition()["stop_on_reply"] is True
    assert replying.fingerprint() != seed.fingerprint()
