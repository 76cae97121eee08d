"""Commands that change a sequence edit its file (keeping comments) and the store together."""

import json
from pathlib import Path

import pytest
import yaml
from builders import sequence, step, write

COMMENTED = """\
# Welcome for leads from the website.
name: Alpha   # shown to the coach
category: custom
priority: 3
funnels:
  - website    # the main form
steps:
  - name: Hello   # first touch
    action_type: send_sms
    action_config:
      message: "Hi {{ lead.first_name }}!"
"""


@pytest.fixture
def nurture(run_store, project: Path):
    """`nurture ARGS` in a temp project, against this test's store (SQLite, then Postgres)."""
    return run_store


def listed(nurture) -> dict[str, dict]:
    return {row["name"]: row for row in json.loads(nurture("sequences", "list", "--json").stdout)}


def test_disable_enable_toggle_edit_the_file_and_the_store(nurture, project):
    path = write(project, "alpha.yaml", COMMENTED)
    nurture("apply", "--yes")
    assert nurture("sequences", "disable", "alpha").exit_code == 0
    text = path.read_text()
    assert "# shown to the coach" in text and "- website    # the main form" in text
    assert yaml.safe_load(text)["active"] is False
    assert listed(nurture)["Alpha"]["active"] is False
    nurture("sequences", "toggle", "Alpha")
    assert yaml.safe_load(path.read_text())["active"] is True
    assert listed(nurture)["Alpha"]["active"] is True
    assert nurture("plan", "--detailed-exitcode").exit_code == 0


def test_list_filters_by_category_and_state(nurture, project):
    write(project, "a.yaml", sequence("Alpha", category="warm_lead"))
    write(project, "b.yaml", sequence("Beta", active=False))
    nurture("apply", "--yes")
    assert (
        list(
            json.loads(nurture("sequences", "list", "--category", "warm_lead", "--json").stdout)[
                0:1
            ]
        )[0]["name"]
        == "Alpha"
    )
    assert [
        r["name"] for r in json.loads(nurture("sequences", "list", "--inactive", "--json").stdout)
    ] == ["Beta"]
    table = nurture("sequences", "list").stdout
    assert "Alpha" in table and "warm_lead" in table


def test_duplicate_writes_an_inactive_copy_and_applies_it(nurture, project):
    write(project, "alpha.yaml", COMMENTED)
    nurture("apply", "--yes")
    result = nurture("sequences", "duplicate", "Alpha", "Alpha Copy")
    assert result.exit_code == 0, result.output
    copy = project / "sequences" / "alpha-copy.yaml"
    assert "# first touch" in copy.read_text()
    doc = yaml.safe_load(copy.read_text())
    assert doc["name"] == "Alpha Copy" and doc["active"] is False
    assert listed(nurture)["Alpha Copy"]["active"] is False
    assert nurture("sequences", "duplicate", "Alpha", "alpha copy").exit_code == 1


def test_duplicate_no_apply_only_writes_the_file(nurture, project):
    write(project, "alpha.yaml", COMMENTED)
    nurture("apply", "--yes")
    nurture("sequences", "duplicate", "Alpha", "Beta", "--no-apply")
    assert "Beta" not in listed(nurture)
    assert "+ create Beta" in nurture("plan").stdout


def test_delete_removes_file_and_store_row(nurture, project):
    path = write(project, "alpha.yaml", COMMENTED)
    nurture("apply", "--yes")
    refused = nurture("sequences", "delete", "Alpha")
    assert refused.exit_code == 1 and path.exists()
    assert nurture("sequences", "delete", "Alpha", "--yes").exit_code == 0
    assert not path.exists() and listed(nurture) == {}
    assert nurture("plan", "--detailed-exitcode").exit_code == 0


def test_bulk_assign_and_unassign(nurture, project):
    a = write(project, "alpha.yaml", COMMENTED)
    b = write(project, "beta.yaml", sequence("Beta", step("Hi")))
    nurture("apply", "--yes")
    result = nurture(
        "funnels", "assign", "-s", "Alpha", "-s", "Beta", "-f", "Instagram Ads", "-f", "website"
    )
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(a.read_text())["funnels"] == ["website", "Instagram Ads"]
    assert yaml.safe_load(b.read_text())["funnels"] == ["Instagram Ads", "website"]
    funnels = {
        row["name"]: [s["name"] for s in row["sequences"]]
        for row in json.loads(nurture("funnels", "list", "--json").stdout)
    }
    assert funnels == {"Instagram Ads": ["Alpha", "Beta"], "website": ["Alpha", "Beta"]}
    assert json.loads(nurture("sequences", "assignments", "Beta", "--json").stdout) == [
        "Instagram Ads",
        "website",
    ]
    nurture("funnels", "unassign", "-s", "Alpha", "-f", "instagram-ads")
    assert yaml.safe_load(a.read_text())["funnels"] == ["website"]
    assert "# the main form" in a.read_text()
    assert nurture("plan", "--detailed-exitcode").exit_code == 0


def test_a_change_that_cannot_apply_restores_the_file(nurture, project):
    path = write(project, "alpha.yaml", COMMENTED)
    nurture("apply", "--yes")
    write(project, "broken.yaml", "name: Broken\nsteps: 3\n")
    before = path.read_text()
    result = nurture("sequences", "disable", "Alpha")
    assert result.exit_code == 1 and "broken.yaml" in result.output
    assert path.read_text() == before
    assert listed(nurture)["Alpha"]["active"] is True


def test_unknown_sequence_suggests_a_name(nurture, project):
    write(project, "alpha.yaml", COMMENTED)
    nurture("apply", "--yes")
    result = nurture("sequences", "show", "Alpah")
    assert result.exit_code == 1
    assert "no sequence 'Alpah'" in result.stderr and "did you mean 'Alpha'" in result.stderr


def test_names_are_printed_literally_never_as_markup(nurture, project):
    result = nurture("sequences", "show", "x[/]")
    assert result.exit_code == 1
    assert "no sequence 'x[/]'" in result.stderr and "Traceback" not in result.output


def test_deleting_a_file_that_was_never_applied(nurture, project):
    path = write(project, "never.yaml", sequence("Never Applied"))
    result = nurture("sequences", "delete", "never-applied", "--yes")
    assert result.exit_code == 0, result.output
    assert not path.exists()


def test_a_change_refuses_to_ship_other_unapplied_edits(nurture, project):
    path = write(project, "alpha.yaml", COMMENTED)
    nurture("apply", "--yes")
    path.write_text(path.read_text().replace("priority: 3", "priority: 9"))
    result = nurture("sequences", "disable", "Alpha")
    assert result.exit_code == 1
    assert "sequences/alpha.yaml has changes that are not applied yet" in result.stderr
    assert yaml.safe_load(path.read_text()).get("active", True) is True
    assert listed(nurture)["Alpha"]["priority"] == 3


def test_duplicate_refuses_a_name_only_the_store_has(nurture, project):
    write(project, "alpha.yaml", COMMENTED)
    gone = write(project, "beta.yaml", sequence("Beta"))
    nurture("apply", "--yes")
    gone.unlink()
    result = nurture("sequences", "duplicate", "Alpha", "Beta")
    assert result.exit_code == 1
    assert "same slug 'beta' as the existing sequence 'Beta'" in result.stderr
    assert nurture("sequences", "duplicate", "Alpha", "日本語").exit_code == 1


def test_funnels_match_by_slug_and_unassign_says_what_was_not_there(nurture, project):
    path = write(project, "alpha.yaml", COMMENTED)
    nurture("apply", "--yes")
    nurture(
        "funnels",
        "assign",
        "-s",
        "Alpha",
        "-f",
        "Instagram Ads",
        "-f",
        "instagram-ads",
        "-f",
        "WEBSITE",
    )
    assert yaml.safe_load(path.read_text())["funnels"] == ["website", "Instagram Ads"]
    result = nurture("funnels", "unassign", "-s", "Alpha", "-f", "never-assigned")
    assert result.exit_code == 1 and "not assigned to Alpha: never-assigned" in result.stderr


def test_a_renamed_file_shows_in_the_plan(nurture, project):
    path = write(project, "alpha.yaml", COMMENTED)
    nurture("apply", "--yes")
    path.rename(project / "sequences" / "first.yaml")
    result = nurture("plan", "--detailed-exitcode")
    assert result.exit_code == 2
    assert 'file: "sequences/alpha.yaml" → "sequences/first.yaml"' in result.stdout


def test_deleting_and_restoring_the_same_content_makes_no_new_version(nurture, project):
    path = write(project, "alpha.yaml", COMMENTED)
    nurture("apply", "--yes")
    text = path.read_text()
    nurture("sequences", "delete", "Alpha", "--yes")
    path.write_text(text)
    nurture("apply", "--yes")
    assert listed(nurture)["Alpha"]["version"] == 1


def test_when_the_store_write_fails_the_file_is_put_back(project, store, monkeypatch):
    from datetime import UTC, datetime

    from nurture.project import sequences as catalog
    from nurture.project import sync
    from nurture.project.layout import Project
    from nurture.spec.templates import COACH_KEYS

    path = write(project, "alpha.yaml", COMMENTED)
    files = Project(project, project / "sequences", COACH_KEYS)
    with store.session(immediate=True) as session:
        sync.apply_changes(session, sync.plan_project(session, files), datetime.now(UTC))
    before = path.read_bytes()

    def store_down(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sync, "apply_changes", store_down)
    with pytest.raises(OSError), store.session(immediate=True) as session:
        catalog.set_active(session, files, "Alpha", False, datetime.now(UTC))
    assert path.read_bytes() == before


def test_a_copy_leaves_the_test_cases_with_the_original(nurture, project, run):
    cases = (
        "tests:\n  - name: a website lead gets the hello\n    lead: {name: Ana}\n"
        "    funnel: website\n    expect: {chosen: true, steps: [hello]}\n"
    )
    write(project, "alpha.yaml", COMMENTED + cases)
    nurture("apply", "--yes")
    assert nurture("sequences", "duplicate", "Alpha", "Alpha Copy").exit_code == 0
    assert "tests" not in yaml.safe_load((project / "sequences" / "alpha-copy.yaml").read_text())
    tested = run("test")  # the original's case still passes: the inactive copy has none
    assert tested.exit_code == 0 and "1 passed in" in tested.output


def test_show_says_the_conditions_in_words(nurture, project, monkeypatch):
    from nurture.cli import output

    monkeypatch.setattr(output.out, "width", 200)
    triggers = {"lead_score": {"min": 40}, "lead_status": ["New", "Contacted"]}
    stop = step("Stop", "wait", conditions={"tags": ["client"]}, stop=True)
    write(project, "alpha.yaml", sequence("Alpha", step("Hi"), stop, trigger_conditions=triggers))
    nurture("apply", "--yes")
    shown = nurture("sequences", "show", "alpha").stdout
    assert "triggers: lead_score 40-100; lead_status New or Contacted\n" in shown
    assert "tags all of client → then stops" in shown
