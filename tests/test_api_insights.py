"""A sequence's stats and its dry run over HTTP: the figures of `nurture stats`, the run of `nurture test`."""

import json

import histories
import pytest
import yaml
from builders import SEED_WARM_LEAD
from serving import serving, token

BASE = "/api/nurturing-sequences"


@pytest.fixture
def api(project, store, store_url, run_store):
    """The known history of the stats tests, served with a read token."""
    histories.build(store, project)
    with serving(project, store_url, sequences="read-write") as client:
        client.headers.update(token(run_store, "dashboard", "read"))
        yield client


def test_stats_are_the_cli_figures_in_camel_case(api, run_store):
    answer = api.get(f"{BASE}/welcome/stats")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    summary = body["summary"]
    assert (body["sequence"], body["currentVersion"]) == ("Welcome", 1)
    assert (summary["assigned"], summary["completed"], summary["converted"]) == (6, 5, 1)
    assert summary["medianCompletionSeconds"] == 93600.0
    steps = {row["stepId"]: row for row in body["steps"]}
    assert [steps[s]["reached"] for s in ("hello", "tip", "nudge")] == [6, 5, 5]
    assert steps["tip"]["failureReasons"] == [{"reason": "no email address", "count": 1}]
    assert steps["hello"]["retried"] == 1 and steps["tip"]["successRate"] == 0.8
    cli = json.loads(run_store("stats", "welcome", "--json").output)
    assert [row["reached"] for row in cli["steps"]] == [row["reached"] for row in body["steps"]]
    number = api.get(f"{BASE}/Welcome").json()["id"]
    by_id = api.get(f"{BASE}/{number}/stats").json()
    assert by_id == body


def test_stats_in_a_window_and_bad_ones(api):
    later = api.get(f"{BASE}/welcome/stats", params={"since": "2099-01-01"}).json()
    assert later["summary"]["assigned"] == 0 and later["steps"][0]["reached"] == 0
    bad = api.get(f"{BASE}/welcome/stats", params={"since": "last tuesday"})
    assert bad.status_code == 400 and "use a duration" in bad.json()["message"]
    reversed_window = {"since": "2026-11-10", "until": "2026-11-01"}
    empty = api.get(f"{BASE}/welcome/stats", params=reversed_window)
    assert empty.status_code == 400
    assert empty.json() == {
        "message": "since (2026-11-10 00:00 UTC) is later than until (2026-11-01 00:00 UTC): "
        "no time is in between"
    }
    assert api.get(f"{BASE}/nope/stats").status_code == 404
    assert api.get(f"{BASE}/welcome/stats", params={"funnel": "nope"}).status_code == 404
    assert (
        api.get(f"{BASE}/welcome/stats", headers={"Authorization": "Bearer x"}).status_code == 401
    )


def test_the_dry_run_is_nurture_test_json_in_camel_case(api, run_store):
    body = {
        "lead": {"name": "Ana Ruiz", "score": 50},
        "start": "2025-03-03T09:00:00Z",
        "events": ["+3h convert"],
    }
    answer = api.post(f"{BASE}/welcome/test", json=body)
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert (run["sequence"], run["status"]) == ("Welcome", "converted")
    rows = [(row["kind"], row["step"], row["outcome"]) for row in run["timeline"]]
    assert rows == [
        ("step", "hello", "sent"), ("step", "tip", "sent"), ("event", None, "event"),
        ("end", None, "converted"),
    ]  # fmt: skip
    assert run["timeline"][0]["at"].startswith("2025-03-03T09:00")
    assert run["timeline"][0]["message"]["recipient"] == "+12025550100"
    cli = run_store(
        "test", "welcome", "--lead-field", "name=Ana Ruiz", "--lead-field", "score=50",
        "--start", "2025-03-03T09:00:00Z", "--event", "+3h convert", "--json",
    )  # fmt: skip
    assert [r["outcome"] for r in json.loads(cli.output)["timeline"]] == [
        r["outcome"] for r in run["timeline"]
    ]
    count = api.get("/api/leads/Ana Ruiz").status_code
    assert count == 404  # nothing reached the project's store


def test_the_dry_run_of_a_sequence_created_over_http(api, run_store, project):
    writer = token(run_store, "crm", "write")
    seed = yaml.safe_load(SEED_WARM_LEAD) | {"funnels": ["website"]}
    assert api.post(BASE, json=seed, headers=writer).status_code == 201
    body = {"lead": {"name": "Bo"}, "tz": "Europe/Madrid", "until": "1h", "funnel": "website"}
    answer = api.post(f"{BASE}/warm-lead-welcome/test", json=body)
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["sequence"] == "Warm Lead Welcome" and run["timezone"] == "Europe/Madrid"
    assert run["timeline"][0]["step"] == "welcome-message"
    assert run["lead"]["timezone"] == "Europe/Madrid" and run["lead"]["optedOut"] == []
    assert run["chosen"] is None and "score" in run["reason"]  # enrolled anyway: it is under test


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"until": "soon"}, 422, "until"),
        ({"tz": "Mars/Olympus"}, 422, "tz"),
        ({"lead": {"score": 101}}, 422, "lead.score"),
        ({"events": ["whenever convert"]}, 422, "events.0"),
    ],
)
def test_bad_dry_runs_name_the_field(api, body, status, field):
    answer = api.post(f"{BASE}/welcome/test", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json().get("field") == field
