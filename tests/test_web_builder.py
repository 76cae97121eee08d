"""The builder page as a coach uses it: start from a template, change steps, see validate's
messages beside the field, preview, save (the plan first, then apply)."""

import html
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from dashboard import HTMX, signed_in
from serving import serving

EXAMPLES = Path(__file__).resolve().parent.parent / "nurture" / "project" / "examples"


@pytest.fixture
def coach(run_store, project, store_url):
    """A signed-in editor on a project with the consultation follow-up applied."""
    shutil.copy(EXAMPLES / "consultation-follow-up.yaml", project / "sequences")
    assert run_store("apply", "--yes").exit_code == 0
    with serving(project, store_url) as client:
        client.headers.update({"X-CSRF-Token": signed_in(client, run_store)})
        yield client


def draft_of(page: str) -> dict[str, str]:
    """The draft the page carries in its hidden fields."""
    [block] = re.findall(r'<div id="draft" hidden>(.*?)</div>', page, re.S)
    text = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', block, re.S).group(1)
    fields = dict(re.findall(r'name="(file|slug|base)" value="([^"]*)"', block))
    return {"text": html.unescape(text), **fields}


def change(client, page: str, **data) -> str:
    answer = client.post("/builder/change", headers=HTMX, data={**draft_of(page), **data})
    assert answer.status_code == 200, answer.text
    return answer.text


def test_a_sequence_from_a_template_is_planned_then_written_to_its_own_file(coach, project):
    choice = coach.get("/builder")
    assert "Webinar Follow-Up" in choice.text and "An empty sequence" in choice.text
    page = coach.get("/builder", params={"name": "Spring Webinar", "template": "webinar-follow-up"})
    assert page.status_code == 200 and '<li class="error">' not in page.text
    assert "sequences/spring-webinar.yaml" in page.text
    planned = coach.post("/builder/plan", headers=HTMX, data=draft_of(page.text))
    assert planned.status_code == 200 and "create Spring Webinar" in planned.text
    assert not (project / "sequences" / "spring-webinar.yaml").exists()
    applied = coach.post("/builder/apply", headers=HTMX, data=draft_of(page.text))
    assert applied.status_code == 200, applied.text
    written = (project / "sequences" / "spring-webinar.yaml").read_text()
    assert written == draft_of(page.text)["text"] and "# Webinar Follow-Up:" in written
    flash = json.loads(applied.headers["HX-Trigger"])["nurture:flash"]
    assert flash.startswith("applied: create Spring Webinar")


def test_steps_are_added_reordered_switched_off_and_removed(coach):
    page = coach.get("/builder", params={"sequence": "consultation-follow-up"}).text
    before = len(yaml.safe_load(draft_of(page)["text"])["steps"])
    page = change(coach, page, op="add", action="send_sms")
    assert len(yaml.safe_load(draft_of(page)["text"])["steps"]) == before + 1
    order = [str(i) for i in (4, 0, 1, 2, 3, 5, 6, 7)]
    page = change(coach, page, op="order", item=order)
    steps = yaml.safe_load(draft_of(page)["text"])["steps"]
    assert [s["id"] for s in steps[:2]] == ["check-in-call", "thank-you"]
    assert "# Only for leads who asked for a second call" in draft_of(page)["text"]
    page = change(coach, page, op="toggle", index="1")
    assert yaml.safe_load(draft_of(page)["text"])["steps"][1]["active"] is False
    page = change(coach, page, op="remove", index="7")
    assert len(yaml.safe_load(draft_of(page)["text"])["steps"]) == 7


def test_a_mistake_in_a_step_shows_validates_words_beside_the_field(coach, project, run):
    page = coach.get("/builder", params={"sequence": "consultation-follow-up"}).text
    page = change(
        coach,
        page,
        op="step",
        index="5",
        action_type="send_sms",
        name="Decision nudge",
        **{"action_config.message": "Hi {{ lead.frist_name }}"},
    )
    beside = re.search(r'id="s5-action_config-message-problem">([^<]*)<', page)
    assert beside is not None, page
    message = html.unescape(beside.group(1))
    assert (
        message
        == "message: unknown template variable 'lead.frist_name' (did you mean 'lead.first_name'?)"
    )
    assert 'aria-invalid="true"' in page and '<details id="step-5" open>' in page
    (project / "sequences" / "consultation-follow-up.yaml").write_text(draft_of(page)["text"])
    said = json.loads(run("validate", "--json").stdout)["diagnostics"]
    assert [d["message"] for d in said] == [message]


def test_the_preview_shows_the_dry_run_for_the_lead_described(coach):
    page = coach.get("/builder", params={"sequence": "consultation-follow-up"}).text
    data = {
        **draft_of(page),
        "lead_name": "Sam Carter",
        "score": "50",
        "status": "Consultation Done",
    }
    shown = coach.post(
        "/builder/preview", headers=HTMX, data=data | {"timezone": "America/Toronto"}
    )
    assert shown.status_code == 200
    assert "thank-you" in shown.text and "plan-recap" in shown.text
    assert "{{1}}=Sam" in html.unescape(shown.text)  # WhatsApp's template: Sam has not written
    assert "nothing was sent" in shown.text


def test_the_yaml_downloads_and_a_path_outside_the_folder_is_refused(coach):
    page = coach.get("/builder", params={"name": "Mine"}).text
    got = coach.post("/builder/download", data=draft_of(page))
    assert (
        got.status_code == 200
        and got.headers["content-disposition"] == 'attachment; filename="mine.yaml"'
    )
    assert got.text == draft_of(page)["text"]
    bad = coach.post(
        "/builder/plan", headers=HTMX, data={**draft_of(page), "file": "../nurture.toml"}
    )
    assert bad.status_code == 400 and "is not a sequence file's name" in html.unescape(bad.text)


def test_a_change_without_the_csrf_token_is_refused(coach):
    page = coach.get("/builder", params={"name": "Mine"}).text
    del coach.headers["X-CSRF-Token"]
    refused = coach.post("/builder/apply", headers=HTMX, data=draft_of(page))
    assert refused.status_code == 403 and "CSRF" in refused.text
