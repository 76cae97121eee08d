"""The original sequence endpoints: same paths, same camelCase JSON, through the CLI's code."""

import json

import pytest
import yaml
from builders import SEED_WARM_LEAD, sequence, write
from serving import serving, token

BASE = "/api/nurturing-sequences"
COMMENTED = """\
# Welcome for leads from the website.
name: Alpha   # shown to the coach
category: warm_lead
funnels:
  - website    # the main form
steps:
  - name: Hello   # first touch
    action_type: send_sms
    action_config:
      message: "Hi {{ lead.first_name }}!"
"""
SEED_JSON = yaml.safe_load(SEED_WARM_LEAD)  # the seed's camelCase sequence, as its API took it


@pytest.fixture
def applied(run_store, project):
    """A project whose sequence Alpha (a file with comments) is applied."""
    write(project, "alpha.yaml", COMMENTED)
    assert run_store("apply", "--yes").exit_code == 0
    return project


@pytest.fixture
def api(applied, run_store, store_url):
    """The API in read-write mode and a write token."""
    with serving(applied, store_url, sequences="read-write") as client:
        client.headers.update(token(run_store, "admin", "write"))
        yield client


def plan(run_store) -> dict[str, str]:
    shown = json.loads(run_store("plan", "--json").stdout)
    return {row["name"]: row["action"] for row in shown["sequences"]}


def test_get_by_id_name_or_slug_in_camel_case(api):
    by_id = api.get(f"{BASE}/1")
    assert by_id.status_code == 200
    body = by_id.json()
    assert body["id"] == 1 and body["name"] == "Alpha" and body["category"] == "warm_lead"
    assert body["managedBy"] == "file" and body["path"] == "sequences/alpha.yaml"
    assert body["funnels"] == ["website"] and body["version"] == 1
    assert body["steps"][0]["actionType"] == "send_sms"
    assert body["steps"][0]["actionConfig"]["message"] == "Hi {{ lead.first_name }}!"
    assert "tests" not in body and "triggerConditions" in body
    assert api.get(f"{BASE}/Alpha").json() == body == api.get(f"{BASE}/alpha").json()
    missing = api.get(f"{BASE}/Alpah")
    assert missing.status_code == 404
    assert missing.json() == {"message": "no sequence 'Alpah' in the store (did you mean 'Alpha'?)"}


def test_list_and_category(api, run_store, project):
    write(project, "beta.yaml", sequence("Beta", active=False))
    run_store("apply", "--yes")
    assert [s["name"] for s in api.get(BASE).json()] == ["Alpha", "Beta"]
    assert [s["name"] for s in api.get(BASE, params={"active": "false"}).json()] == ["Beta"]
    assert [s["name"] for s in api.get(f"{BASE}/category/warm_lead").json()] == ["Alpha"]
    assert api.get(f"{BASE}/category/follow_up").json() == []
    wrong = api.get(f"{BASE}/category/hot")
    assert wrong.status_code == 422 and wrong.json()["field"] == "category"


def test_writes_are_409_while_read_only(applied, run_store, store_url):
    with serving(applied, store_url) as client:  # api.sequences defaults to read-only
        client.headers.update(token(run_store, "admin", "write"))
        for method, path in (("PUT", f"{BASE}/1/toggle"), ("DELETE", f"{BASE}/1")):
            answer = client.request(method, path)
            assert answer.status_code == 409
            assert "change the YAML file and run `nurture apply`" in answer.json()["message"]
        assert client.post(BASE, json=SEED_JSON).status_code == 409
        invalid = {"name": "X", "steps": [{"actionType": "send_fax"}], "nmae": 1}
        writes = [("POST", BASE), ("PUT", f"{BASE}/1"), ("POST", f"{BASE}/bulk-assign")]
        writes += [("POST", f"{BASE}/assign-to-funnel"), ("PUT", f"{BASE}/1/toggle")]
        for method, path in writes:  # whatever the body: read-only comes first
            answer = client.request(method, path, json=invalid)
            assert answer.status_code == 409, (method, path, answer.text)
            assert answer.json()["message"].startswith("sequences are read-only over HTTP")
        assert client.request("POST", BASE, json=[]).status_code == 409
        assert client.get(f"{BASE}/1").status_code == 200
    assert plan(run_store) == {"Alpha": "unchanged"}


def test_the_seeds_camel_case_sequence_is_created_in_the_store_as_drift(api, run_store, project):
    created = api.post(BASE, json=SEED_JSON)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "Warm Lead Welcome" and body["managedBy"] == "api"
    assert body["triggerConditions"]["leadScore"] == {"min": 30, "max": 70}
    assert body["steps"][0]["id"] == "welcome-message" and body["path"] is None
    assert plan(run_store) == {"Alpha": "unchanged", "Warm Lead Welcome": "drift"}
    again = api.post(BASE, json=SEED_JSON)
    assert again.status_code == 409 and "exists already" in again.json()["message"]

    exported = run_store("sequences", "export", "warm-lead-welcome")
    assert exported.exit_code == 0, exported.output
    path = project / "sequences" / "warm-lead-welcome.yaml"
    assert "wrote " in exported.stderr and path.exists()
    assert yaml.safe_load(path.read_text())["trigger_conditions"]["lead_source"] == [
        "Web Form",
        "Lead Magnet",
    ]
    assert run_store("validate").exit_code == 0
    assert plan(run_store) == {"Alpha": "unchanged", "Warm Lead Welcome": "unchanged"}
    assert api.get(f"{BASE}/warm-lead-welcome").json()["managedBy"] == "file"
    twice = run_store("sequences", "export", "warm-lead-welcome")
    assert twice.exit_code == 1 and "has a file already" in twice.stderr


def test_a_get_answer_can_be_put_back_with_a_change(api, run_store):
    created = api.post(BASE, json=SEED_JSON).json()
    created["description"] = "Changed over HTTP"
    created["steps"][0]["delayHours"] = 2
    updated = api.put(f"{BASE}/{created['id']}", json=created)
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2 and updated.json()["description"] == "Changed over HTTP"
    assert plan(run_store)["Warm Lead Welcome"] == "drift"


def test_put_on_a_file_sequence_rewrites_and_applies_its_file(api, run_store, project):
    body = api.get(f"{BASE}/alpha").json()
    body["priority"] = 7
    answer = api.put(f"{BASE}/alpha", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["priority"] == 7 and answer.json()["version"] == 2
    assert yaml.safe_load((project / "sequences" / "alpha.yaml").read_text())["priority"] == 7
    assert plan(run_store) == {"Alpha": "unchanged"}
    renamed = api.put(f"{BASE}/alpha", json=body | {"name": "Omega"})
    assert renamed.status_code == 409 and "duplicate it, then delete" in renamed.json()["message"]


def test_invalid_sequences_name_the_field(api):
    bad = SEED_JSON | {"steps": [{"name": "x", "actionType": "send_sms", "actionConfig": {}}]}
    answer = api.post(BASE, json=bad)
    assert answer.status_code == 422
    assert answer.json() == {
        "message": "missing required field 'message'",
        "field": "steps.0.actionConfig.message",
    }
    template = {
        "name": "x",
        "actionType": "send_sms",
        "actionConfig": {"message": "{{ lead.nme }}"},
    }
    answer = api.post(BASE, json=SEED_JSON | {"steps": [template]})
    assert answer.status_code == 422
    assert answer.json()["field"] == "steps.0.actionConfig.message"
    assert "unknown template variable 'lead.nme'" in answer.json()["message"]
    twice = SEED_JSON | {"steps": [SEED_JSON["steps"][0]] * 2}
    answer = api.post(BASE, json=twice)
    assert answer.status_code == 422 and answer.json()["field"] == "steps.1.id"
    assert answer.json()["message"].startswith("steps[1]: duplicate step id 'welcome-message'")


SMS = {"name": "Hello", "actionType": "send_sms", "actionConfig": {"message": "Hi"}}


@pytest.mark.parametrize(
    ("change", "message", "field"),
    [
        (
            {"steps": [SMS | {"actionType": "send_fax"}]},
            "unknown action type 'send_fax' (did you mean 'send_email'?)",
            "steps.0.actionType",
        ),
        (
            {"steps": [{"name": "x", "action_type": "fax", "action_config": {}}]},
            "unknown action type 'fax' (one of: send_whatsapp_message, send_email, send_sms, "
            "create_task, update_lead_score, add_lead_tag, schedule_appointment, "
            "send_notification, wait)",
            "steps.0.action_type",
        ),
        (
            {"steps": [SMS | {"actionConfig": {"mesage": "Hi {{ lead.name }}"}}]},
            "unknown key 'mesage' (did you mean 'message'?) (and 1 more: "
            "steps.0.actionConfig.message: missing required field 'message')",
            "steps.0.actionConfig.mesage",
        ),
        (  # user text is not a format string
            {"steps": [SMS | {"actionConfig": {"message": "Hi", "{{ lead.name }}": "{0}"}}]},
            "unknown key '{{ lead.name }}' (a send_sms actionConfig takes: message)",
            "steps.0.actionConfig.{{ lead.name }}",
        ),
        (
            {"descripton": "typo"},
            "unknown key 'descripton' (did you mean 'description'?)",
            "descripton",
        ),
        (
            {"delayDays": 2},
            "unknown key 'delayDays' here ('delayDays' goes under steps)",
            "delayDays",
        ),
    ],
)
def test_invalid_sequences_get_the_messages_of_validate(api, change, message, field):
    created = api.post(BASE, json=SEED_JSON | change)
    assert created.status_code == 422
    assert created.json() == {"message": message, "field": field}
    replaced = api.put(f"{BASE}/alpha", json=api.get(f"{BASE}/alpha").json() | change)
    assert replaced.status_code == 422
    assert replaced.json() == {"message": message, "field": field}


def test_every_problem_of_a_sequence_is_listed_after_the_first(api):
    steps = [SMS, SMS | {"actionType": "send_fax"}, {"name": "No type", "actionConfig": {}}]
    answer = api.post(BASE, json=SEED_JSON | {"descripton": "x", "steps": steps})
    assert answer.status_code == 422
    assert answer.json() == {
        "message": "unknown action type 'send_fax' (did you mean 'send_email'?) (and 2 more: "
        "steps.2.actionType: missing action_type; "
        "descripton: unknown key 'descripton' (did you mean 'description'?))",
        "field": "steps.1.actionType",
    }


def test_template_problems_name_the_field_as_the_body_spells_it(api):
    step = {"name": "x", "action_type": "send_sms", "action_config": {"message": "{{ lead.nme }}"}}
    answer = api.post(BASE, json={"name": "Snake", "steps": [step, step | {"name": "y"}]})
    assert answer.status_code == 422
    assert answer.json()["field"] == "steps.0.action_config.message"
    assert answer.json()["message"].startswith("unknown template variable 'lead.nme'")
    assert (
        "(and 1 more: steps.1.action_config.message: unknown template" in answer.json()["message"]
    )


def test_a_bad_dry_run_event_names_its_place_in_the_body(api):
    answer = api.post(f"{BASE}/alpha/test", json={"events": ["+1d convert", "+1d explode"]})
    assert answer.status_code == 422
    assert answer.json() == {
        "message": "unknown event 'explode' (one of convert, status, score, temperature, tag, "
        "fail, opt-out, opt-in, inbound, reply, click, open, delivered, read, bounce, book, "
        "attended, no-show, cancel)",
        "field": "events.1",
    }


def test_toggle_edits_the_file_like_the_cli(api, run_store, project):
    answer = api.put(f"{BASE}/alpha/toggle")
    assert answer.status_code == 200 and answer.json()["active"] is False
    text = (project / "sequences" / "alpha.yaml").read_text()
    assert "# shown to the coach" in text and yaml.safe_load(text)["active"] is False
    assert api.put(f"{BASE}/alpha/toggle", json={"active": False}).json()["active"] is False
    assert api.put(f"{BASE}/alpha/toggle").json()["active"] is True
    assert plan(run_store) == {"Alpha": "unchanged"}


def test_toggle_duplicate_and_delete_a_store_only_sequence(api, run_store):
    created = api.post(BASE, json=SEED_JSON).json()
    assert api.put(f"{BASE}/{created['id']}/toggle").json()["active"] is False
    copy = api.post(f"{BASE}/{created['id']}/duplicate", json={"name": "Warm Copy"})
    assert copy.status_code == 201 and copy.json()["active"] is False
    assert copy.json()["managedBy"] == "api"
    assert api.delete(f"{BASE}/warm-copy").status_code == 204
    assert api.get(f"{BASE}/warm-copy").status_code == 404
    assert plan(run_store) == {"Alpha": "unchanged", "Warm Lead Welcome": "drift"}


def test_duplicate_and_delete_a_file_sequence_like_the_cli(api, run_store, project):
    copy = api.post(f"{BASE}/alpha/duplicate")
    assert copy.status_code == 201 and copy.json()["name"] == "Copy of Alpha"
    path = project / "sequences" / "copy-of-alpha.yaml"
    assert "# first touch" in path.read_text()
    assert api.delete(f"{BASE}/copy-of-alpha").status_code == 204
    assert not path.exists()
    assert plan(run_store) == {"Alpha": "unchanged"}


def test_funnel_assignment_endpoints(api, run_store, project):
    api.post(BASE, json=SEED_JSON)
    answer = api.post(f"{BASE}/assign-to-funnel", json={"sequenceId": 1, "funnelId": "Instagram"})
    assert answer.status_code == 200, answer.text
    assert answer.json()[0]["funnels"] == ["Instagram", "website"]  # the store's order: by name
    assert yaml.safe_load((project / "sequences" / "alpha.yaml").read_text())["funnels"] == [
        "website",
        "Instagram",
    ]
    bulk = api.post(
        f"{BASE}/bulk-assign",
        json={"sequenceIds": ["alpha", "Warm Lead Welcome"], "funnelIds": [1, "Referrals"]},
    )
    assert bulk.status_code == 200, bulk.text
    assert [s["funnels"] for s in bulk.json()] == [
        ["Instagram", "Referrals", "website"],
        ["Referrals", "website"],
    ]
    listed = api.get(f"{BASE}/warm-lead-welcome/funnel-assignments").json()
    assert [(a["funnel"], a["funnelId"]) for a in listed] == [("Referrals", 3), ("website", 1)]
    assert all(a["assignedAt"].endswith("Z") for a in listed)
    removed = api.post(
        f"{BASE}/remove-from-funnel", json={"sequenceId": "warm-lead-welcome", "funnelId": 1}
    )
    assert removed.json()[0]["funnels"] == ["Referrals"]
    again = api.post(
        f"{BASE}/remove-from-funnel", json={"sequenceId": "warm-lead-welcome", "funnelId": 1}
    )
    assert again.status_code == 400 and "is not assigned to website" in again.json()["message"]
    unknown = api.post(f"{BASE}/assign-to-funnel", json={"sequenceId": 1, "funnelId": 99})
    assert unknown.status_code == 404 and unknown.json() == {"message": "no funnel with id 99"}
    assert plan(run_store) == {"Alpha": "unchanged", "Warm Lead Welcome": "drift"}
