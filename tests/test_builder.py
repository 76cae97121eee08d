"""The builder's services: a coach's edits to a sequence, checked in `validate`'s words,
previewed as `nurture test` runs it, saved to its YAML file (comments kept) after a plan."""

import json
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from nurture.errors import Conflict, NurtureError, SpecError
from nurture.project.builder import drafts, saving
from nurture.project.layout import Project
from nurture.settings import Settings, load_settings
from nurture.simulate.preview import preview
from nurture.spec import forms
from nurture.spec.actions import ActionType
from nurture.spec.cases import CaseLead
from nurture.store.db import open_store

EXAMPLES = Path(__file__).resolve().parent.parent / "nurture" / "project" / "examples"
NOW = datetime(2025, 3, 3, 9, tzinfo=UTC)


@pytest.fixture
def coach(project: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A project under git with the two examples applied, on this test's store."""
    for name in ("consultation-follow-up.yaml", "warm-lead-welcome.yaml"):
        shutil.copy(EXAMPLES / name, project / "sequences" / name)
    monkeypatch.setenv("NURTURE_AUTO_MIGRATE", "true")
    settings = load_settings(project, database_url=store_url)
    (project / ".gitignore").write_text("nurture.db*\n")
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "-c", "user.name=c", "-c", "user.email=c@example.com", "commit", "-qm", "start")
    with open_store(settings.database) as store, store.session(immediate=True) as session:
        from nurture.project.sync import apply_changes, plan_project

        apply_changes(session, plan_project(session, Project.from_settings(settings)), NOW)
    return settings


def _git(project: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True)
    return done.stdout


def _changed_lines(project: Path) -> list[str]:
    """`git diff`'s added and removed lines, without its headers."""
    diff = _git(project, "diff", "-U0")
    return [
        line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]


def _save(settings: Settings, draft: drafts.Draft) -> saving.SavePlan:
    with open_store(settings.database) as store, store.session(immediate=True) as session:
        planned = saving.plan_save(session, settings, draft)
        saving.apply_save(session, settings, draft, NOW)
    return planned


def test_an_edit_and_a_reorder_keep_every_comment_and_change_only_their_lines(coach, project):
    path = project / "sequences" / "consultation-follow-up.yaml"
    before = path.read_text()
    draft = drafts.open_draft(Project.from_settings(coach), "consultation-follow-up")
    text = drafts.edit_step(draft.text, 5, {"delay": "3d"})  # decision-nudge: 2 days → 3
    text = drafts.move_step(text, 4, 1)  # the check-in call, its comments with it, goes second
    planned = _save(coach, drafts.Draft(text, draft.path, draft.slug, draft.base))
    after = path.read_text()
    comments = [line.strip() for line in before.splitlines() if line.strip().startswith("#")]
    assert all(comment in after for comment in comments)
    moved = before[before.index("  - id: check-in-call") : before.index("  - id: decision-nudge")]
    assert after.index(moved) < after.index("  - id: consultation-score")
    assert sorted(_changed_lines(project)) == sorted(
        [f"+{line}" for line in moved.splitlines()]
        + [f"-{line}" for line in moved.splitlines()]
        + ["-    delay_days: 2", "+    delay_days: 3"]
    )
    [change] = planned.plan.changes
    assert change.action == "update" and change.in_flight == 0
    assert {(s.step_id, s.kind) for s in change.steps} >= {
        ("check-in-call", "moved"),
        ("decision-nudge", "changed"),
    }
    assert planned.diff.startswith("--- a/sequences/consultation-follow-up.yaml\n")


def test_the_seeds_camel_case_file_gets_camel_case_keys_and_renumbered_steps(coach, project):
    draft = drafts.open_draft(Project.from_settings(coach), "warm-lead-welcome")
    text = drafts.move_step(draft.text, 4, 0)  # stepNumber 5 goes first: all are numbered again
    text = drafts.add_step(text, ActionType.CREATE_TASK)
    data = yaml.safe_load(text)
    assert [step["stepNumber"] for step in data["steps"][:5]] == [1, 2, 3, 4, 5]
    assert set(data["steps"][-1]) == {"name", "actionType", "actionConfig", "delayDays"}
    assert data["steps"][-1]["actionConfig"] == {
        "title": "Call {{ lead.name }}",
        "dueIn": "1d",
        "priority": "normal",
    }
    assert saving.check(coach, drafts.Draft(text, draft.path, draft.slug, draft.base)) == []


def test_validation_says_what_nurture_validate_says_with_each_fields_path(coach, project, run):
    draft = drafts.open_draft(Project.from_settings(coach), "consultation-follow-up")
    text = drafts.edit_step(
        draft.text, 0, {"action_config": {"message": "Hi {{ lead.frist_name }}"}}
    )
    text = drafts.edit_step(text, 1, {"action_config": {"add": "twenty"}})
    text = drafts.edit_settings(text, {"re_entry": "sometimes", "send_window": {"start": "20:00"}})
    found = saving.check(coach, drafts.Draft(text, draft.path, draft.slug, draft.base))
    draft.path.write_text(text)
    said = json.loads(run("validate", "--json", cwd=project).stdout)["diagnostics"]
    assert [d.as_dict() for d in found] == said
    assert {
        field: [d.message for d in found]
        for field, found in drafts.diagnostics_by_field(found).items()
    } == {
        "steps.0.action_config.message": [
            "message: unknown template variable 'lead.frist_name' (did you mean 'lead.first_name'?)"
        ],
        "steps.1.action_config.add": [
            "add: Input should be a valid integer, unable to parse string as an integer (found 'twenty')"
        ],
        "re_entry": ["re_entry: unknown value 'sometimes' (one of: never, after_exit, always)"],
        "send_window": ["send_window: start (20:00) must be before end (19:00)"],
    }


def test_warnings_too_are_validates_beside_their_field(coach, project, run):
    draft = drafts.open_draft(Project.from_settings(coach), "warm-lead-welcome")
    text = drafts.add_step(draft.text, ActionType.SEND_WHATSAPP_MESSAGE)  # free text only
    found = saving.check(coach, drafts.Draft(text, draft.path, draft.slug, draft.base))
    draft.path.write_text(text)
    said = json.loads(run("validate", "--json", cwd=project).stdout)["diagnostics"]
    assert [d.as_dict() for d in found] == said
    [warning] = found
    assert warning.severity == "warning" and warning.message.endswith("[whatsapp-window]")
    assert warning.path == ("steps", 5, "actionConfig", "message")


def test_an_auto_booking_without_availability_is_validates_error_too(coach, project, run):
    draft = drafts.open_draft(Project.from_settings(coach), "warm-lead-welcome")
    text = drafts.add_step(draft.text, ActionType.SCHEDULE_APPOINTMENT)
    text = drafts.edit_step(text, 5, {"action_config": {"mode": "auto"}})
    found = saving.check(coach, drafts.Draft(text, draft.path, draft.slug, draft.base))
    draft.path.write_text(text)
    said = json.loads(run("validate", "--json", cwd=project).stdout)["diagnostics"]
    assert [d.as_dict() for d in found] == said
    (error,) = found
    assert error.severity == "error" and "add [availability] to nurture.toml" in error.message


def test_every_action_type_can_be_added_and_the_sequence_stays_valid(coach):
    project = Project.from_settings(coach)
    draft = drafts.new_draft(project, "Everything")
    text = draft.text
    for action in ActionType:
        text = drafts.add_step(text, action)
    rows = drafts.step_rows(text)
    assert [row["action_type"] for row in rows[1:]] == [action.value for action in ActionType]
    assert len({row["id"] for row in rows}) == len(rows)
    found = saving.check(coach, drafts.Draft(text, draft.path))
    assert [d.message for d in found if d.severity == "error"] == []


def test_steps_are_removed_switched_off_and_moved_by_index(coach):
    draft = drafts.new_draft(Project.from_settings(coach), "Moves")
    text = drafts.add_step(drafts.add_step(draft.text, "send_sms"), "wait")
    ids = lambda t: [row["id"] for row in drafts.step_rows(t)]  # noqa: E731
    assert ids(text) == ["first-message", "text-message", "wait"]
    assert ids(drafts.move_step(text, 2, 0)) == ["wait", "first-message", "text-message"]
    assert ids(drafts.move_step(text, 0, 1)) == ["text-message", "first-message", "wait"]
    assert ids(drafts.move_up(text, 1)) == ["text-message", "first-message", "wait"]
    assert ids(drafts.move_down(text, 1)) == ["first-message", "wait", "text-message"]
    assert drafts.move_down(text, 2) == text == drafts.move_up(text, 0)
    assert ids(drafts.remove_step(text, 1)) == ["first-message", "wait"]
    off = drafts.toggle_step(text, 1)
    assert [row["active"] for row in drafts.step_rows(off)] == [True, False, True]
    assert drafts.toggle_step(off, 1) == off.replace("active: false", "active: true")
    with pytest.raises(NurtureError, match="no step 4: the sequence has 3"):
        drafts.move_step(text, 3, 0)


def test_a_step_form_posted_back_edits_the_step_and_pins_its_id(coach):
    draft = drafts.open_draft(Project.from_settings(coach), "consultation-follow-up")
    fields = [*forms.STEP_FIELDS, *forms.condition_fields(), *forms.action_fields("create_task")]
    form = drafts.step_form(draft.text, 3)
    assert form["action_config.due_in"] == "1d" and form["delay"] == "1d"
    form |= {"name": "Call them back", "action_config.priority": "normal", "conditions.tags": "hot"}
    form.pop("stop", None)  # an unchecked box is not posted
    form["active"] = "on"
    text = drafts.edit_step(draft.text, 3, forms.values(fields, form))
    step = yaml.safe_load(text)["steps"][3]
    assert step["id"] == "follow-up-call" and step["name"] == "Call them back"
    assert step["action_config"]["priority"] == "normal" and step["conditions"] == {"tags": ["hot"]}
    assert "stop" not in step and "active" not in step  # a default equal to the file's: left out


def test_changing_a_steps_action_type_replaces_its_config(coach):
    draft = drafts.new_draft(Project.from_settings(coach), "Switch")
    email = forms.action_fields("send_sms")
    values = forms.values(email, {"action_config.message": "Hi {{ lead.first_name }}"})
    text = drafts.edit_step(draft.text, 0, {"action_type": "send_sms", **values})
    assert yaml.safe_load(text)["steps"][0]["action_config"] == {
        "message": "Hi {{ lead.first_name }}"
    }


def test_the_preview_is_the_dry_run_nurture_test_prints(coach, project, run):
    draft = drafts.open_draft(Project.from_settings(coach), "warm-lead-welcome")
    lead = CaseLead(
        name="Tom Baker",
        source="Lead Magnet",
        status="Contacted",
        temperature="Hot",
        score=65,
        tags=["vip"],
        timezone="Europe/Madrid",
    )
    shown = preview(coach, draft.text, draft.path, lead, NOW, funnel="lead-magnet")
    assert shown.decision[0].startswith("Funnel lead-magnet: Warm Lead Welcome")
    cli = run(
        "test",
        "warm-lead-welcome",
        "--funnel",
        "lead-magnet",
        "--start",
        NOW.isoformat(),
        "--tz",
        "Europe/Madrid",
        "--json",
        *[
            f"--lead-field={k}={v}"
            for k, v in {
                "name": "Tom Baker",
                "source": "Lead Magnet",
                "status": "Contacted",
                "temperature": "Hot",
                "score": "65",
                "tags": "vip",
            }.items()
        ],
        cwd=project,
    )
    timeline = json.loads(cli.stdout)["timeline"]
    assert [(r.local_time, r.step, r.outcome, r.message) for r in shown.rows] == [
        (r["local"], r["step"] or r["kind"], r["outcome"], r["detail"]) for r in timeline
    ]
    assert any(
        "Welcome to Your Coaching Business" in r.message or "{{1}}=Tom" in r.message
        for r in shown.rows
    )
    assert shown.summary.startswith("completed: ") and "nothing was sent" in shown.summary


def test_a_preview_of_an_invalid_draft_gives_its_errors_and_no_timeline(coach):
    draft = drafts.new_draft(Project.from_settings(coach), "Broken")
    text = drafts.edit_step(draft.text, 0, {"action_config": {"subject": None}})  # None: removed
    shown = preview(coach, text, draft.path, CaseLead(), NOW)
    assert shown.rows == [] and [d.message for d in shown.diagnostics] == [
        "missing required field 'subject'"
    ]


def test_a_new_sequence_from_a_template_gets_its_own_file_after_its_plan(coach, project, run):
    draft = drafts.new_draft(Project.from_settings(coach), "Spring Webinar", "webinar-follow-up")
    target = project / "sequences" / "spring-webinar.yaml"
    with open_store(coach.database) as store, store.session(immediate=True) as session:
        planned = saving.plan_save(session, coach, draft)
        assert not target.exists()  # a plan writes nothing
        [change] = planned.plan.changes
        assert (change.action, change.name, planned.target) == ("create", "Spring Webinar", "file")
        assert planned.diff.startswith("--- /dev/null\n+++ b/sequences/spring-webinar.yaml")
        saving.apply_save(session, coach, draft, NOW)
    assert target.read_text() == draft.text
    assert (
        run("--database-url", coach.database, "plan", "--detailed-exitcode", cwd=project).exit_code
        == 0
    )
    assert _git(project, "status", "--short") == "?? sequences/spring-webinar.yaml\n"


def test_the_plan_says_how_many_leads_in_flight_a_save_touches(coach, project, run):
    added = run(
        "--database-url",
        coach.database,
        "leads",
        "add",
        "--name",
        "Ana",
        "--status",
        "Consultation Done",
        "--score",
        "50",
        "--funnel",
        "referrals",
        cwd=project,
    )
    assert added.exit_code == 0, added.output
    draft = drafts.open_draft(Project.from_settings(coach), "consultation-follow-up")
    text = drafts.edit_step(draft.text, 6, {"delay": "2d"})
    with open_store(coach.database) as store, store.session() as session:
        planned = saving.plan_save(
            session, coach, drafts.Draft(text, draft.path, draft.slug, draft.base)
        )
    [change] = planned.plan.changes
    assert change.in_flight == 1
    assert [(s.step_id, s.kind, s.fields) for s in change.steps] == [
        ("still-undecided", "changed", ("delay_days",))
    ]


def test_a_file_changed_since_it_was_opened_is_not_overwritten(coach, project):
    draft = drafts.open_draft(Project.from_settings(coach), "consultation-follow-up")
    text = drafts.toggle_step(draft.text, 0)
    draft.path.write_text(draft.path.read_text().replace("priority: 30", "priority: 31"))
    with pytest.raises(Conflict, match="changed since the builder opened it"):
        _save(coach, drafts.Draft(text, draft.path, draft.slug, draft.base))
    assert "priority: 31" in draft.path.read_text()


def test_renaming_a_sequence_is_refused_like_the_api_does(coach):
    draft = drafts.open_draft(Project.from_settings(coach), "consultation-follow-up")
    text = drafts.edit_settings(draft.text, {"name": "Another Name"})
    with pytest.raises(Conflict, match="renaming 'consultation-follow-up' to 'Another Name'"):
        _save(coach, drafts.Draft(text, draft.path, draft.slug, draft.base))


def test_a_save_with_errors_says_them_and_writes_nothing(coach, project):
    draft = drafts.open_draft(Project.from_settings(coach), "consultation-follow-up")
    text = drafts.edit_settings(draft.text, {"priority": "high"})
    with pytest.raises(SpecError) as raised:
        _save(coach, drafts.Draft(text, draft.path, draft.slug, draft.base))
    assert "priority: Input should be a valid integer" in str(raised.value)
    assert _git(project, "status", "--short") == ""


def test_with_api_managed_sequences_a_new_one_is_saved_to_the_store(coach, project, run):
    settings = coach.model_copy(
        update={"api": coach.api.model_copy(update={"sequences": "read-write"})}
    )
    assert saving.mode(settings) == "store"
    draft = drafts.new_draft(Project.from_settings(settings), "Store Only", "win-back")
    with open_store(settings.database) as store, store.session(immediate=True) as session:
        planned = saving.plan_save(session, settings, draft)
        assert planned.target == "store" and planned.plan.changes[0].path is None
        saving.apply_save(session, settings, draft, NOW)
        opened = drafts.stored_draft(session, Project.from_settings(settings), "store-only")
    assert not draft.path.exists()
    listed = run("--database-url", coach.database, "sequences", "list", "--json", cwd=project)
    assert "Store Only" in [row["name"] for row in json.loads(listed.stdout)]
    assert yaml.safe_load(opened.text)["name"] == "Store Only"
    edited = replace(opened, text=drafts.edit_settings(opened.text, {"priority": 7}))
    with open_store(settings.database) as store, store.session(immediate=True) as session:
        saving.apply_save(session, settings, edited, NOW)
        with pytest.raises(NurtureError, match="lives in the store alone"):
            saving.plan_save(session, coach, edited)  # without read-write: export it first
    shown = run("--database-url", coach.database, "sequences", "show", "store-only", "--json")
    assert json.loads(shown.stdout)["priority"] == 7


def test_without_a_writable_sequences_folder_the_builder_checks_and_offers_a_download(coach):
    settings = coach.model_copy(update={"sequences_dir": "not-here"})
    assert saving.mode(settings) == "read-only"
    draft = drafts.new_draft(Project.from_settings(settings), "Look Only", "trial-to-paid")
    assert saving.check(settings, draft) == []
    with (
        pytest.raises(NurtureError, match="read-only here"),
        open_store(settings.database) as store,
        store.session() as session,
    ):
        saving.plan_save(session, settings, draft)
    assert saving.download(draft) == ("look-only.yaml", draft.text)


def test_each_action_type_has_a_form_whose_templates_offer_the_variables(coach):
    every = forms.action_forms()
    assert set(every) == {action.value for action in ActionType}
    email = {field.name: field for field in every["send_email"]}
    assert (
        email["action_config.subject"].kind == "template"
        and email["action_config.subject"].required
    )
    assert email["action_config.body"].multiline
    assert every["update_lead_score"][0].name == "action_config.set"
    variables = forms.template_variables(coach.coach.model_dump())
    assert "{{ lead.first_name }}" in variables and "{{ coach.booking_url }}" in variables
    settings = {field.name: field for field in forms.settings_fields()}
    assert settings["re_entry"].choices == ("never", "after_exit", "always")
    assert {"send_window.timezone", "send_window.holidays", "stop_on_reply", "funnels"} <= set(
        settings
    )


def test_a_condition_flag_left_unset_asks_nothing_and_set_asks_yes_or_no():
    """`replied` in a step's conditions is a choice of true, false or unasked (blank): a blank
    select asks nothing, where a checkbox would have written `replied: false`."""
    fields = forms.condition_fields()
    replied = next(field for field in fields if field.name == "conditions.replied")
    assert replied.kind == "choice" and replied.choices == ("true", "false")
    assert forms.values([replied], {"conditions.replied": ""}) == {"conditions": None}  # removed
    assert forms.values([replied], {"conditions.replied": "true"}) == {
        "conditions": {"replied": True}
    }
    assert forms.values([replied], {"conditions.replied": "false"}) == {
        "conditions": {"replied": False}
    }
