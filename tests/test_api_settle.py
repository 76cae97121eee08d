"""`POST /api/enrollments/settle`: the plan (dry run) or the sends settled, behind a write token."""

from datetime import timedelta

import pytest
from builders import sequence, step
from enrolling import apply, enroll, enrollment, executions
from serving import serving, token
from test_settle import crash_mid_send, recently

from nurture.store.db import open_store

SETTLE = "/api/enrollments/settle"


@pytest.fixture
def api(run_store, project, store_url):
    """Welcome (two texts) and Texts, two sends of unclear fate in each; the API, two tokens."""
    with open_store(store_url) as store:
        apply(store, project, sequence("Welcome", step("Hello"), step("Later", delay_days=1)))
        apply(store, project, sequence("Texts", step("Hi")))
        sent_at = recently()
        ids = [enroll(store, name, now=sent_at) for name in ("Welcome", "Welcome", "Texts")]
        crash_mid_send(store, ids, sent_at)
    with serving(project, store_url) as client:
        client.admin = token(run_store, "ops", "write")
        client.reader = token(run_store, "dashboard", "read")
        client.sent_at, client.ids, client.store = sent_at, ids, client.app.state.context.store
        yield client


def test_a_dry_run_answers_the_plan_and_changes_nothing(api):
    answer = api.post(SETTLE, json={"as": "sent", "dryRun": True}, headers=api.admin)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert (plan["as"], plan["count"], plan["settled"]) == ("sent", 3, None)
    assert plan["effect"].startswith("mark each send sent")
    assert [(g["sequence"], g["step"], g["count"]) for g in plan["groups"]] == [
        ("Texts", "hi", 1),
        ("Welcome", "hello", 2),
    ]
    assert plan["oldest"].startswith(api.sent_at.isoformat()[:19])
    assert {enrollment(api.store, i).status for i in api.ids} == {"unknown"}


def test_settling_answers_the_counts_and_logs_the_token(api):
    body = {"as": "sent", "sequence": "welcome", "step": "hello", "since": "1d"}
    answer = api.post(SETTLE, json=body, headers=api.admin)
    assert answer.status_code == 200, answer.text
    assert answer.json()["settled"] == {"settled": 2, "gone": 0, "statuses": {"active": 2}}
    first = enrollment(api.store, api.ids[0])
    assert first.step_id == "later" and first.next_run_at == api.sent_at + timedelta(days=1)
    hello = executions(api.store, api.ids[0])[0]
    assert hello.status == "sent" and hello.detail["settled"]["by"] == "token ops (api)"
    assert enrollment(api.store, api.ids[2]).status == "unknown"
    again = api.post(SETTLE, json=body, headers=api.admin).json()
    assert (again["count"], again["settled"]) == (0, None)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"as": "maybe"}, "as", "Input should be 'sent', 'resend' or 'stop'"),
        ({}, "as", "Field required"),
        ({"as": "sent", "since": "last week"}, "since", "since 'last week': use a duration"),
        ({"as": "sent", "since": "1h", "until": "2d"}, "until", "is later than until"),
        ({"as": "sent", "sequence": "Welcom"}, "sequence", "(did you mean 'Welcome'?)"),
        ({"as": "sent", "step": "hllo"}, "step", "no step 'hllo' (did you mean 'hello'?)"),
        ({"as": "sent", "enrollments": ["x"]}, "enrollments.0", "valid integer"),
        ({"as": "sent", "enrollments": [2**40]}, "enrollments.0", "less than or equal to"),
        ({"as": "sent", "step": "hi\x00"}, "step", "a NUL byte is not allowed here"),
        ({"as": "sent", "bogus": 1}, "bogus", "Extra inputs are not permitted"),
    ],
)
def test_bad_values_are_422_naming_the_field(api, body, field, message):
    answer = api.post(SETTLE, json=body, headers=api.admin)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert message in answer.json()["message"]
    assert {enrollment(api.store, i).status for i in api.ids} == {"unknown"}


def test_settling_needs_a_write_token(api):
    assert api.post(SETTLE, json={"as": "stop"}).status_code == 401
    refused = api.post(SETTLE, json={"as": "stop"}, headers=api.reader)
    assert refused.status_code == 403
    assert refused.json()["message"] == "token 'dashboard' lacks the write scope"
    assert {enrollment(api.store, i).status for i in api.ids} == {"unknown"}


def test_the_route_is_described_in_openapi(api):
    operation = api.get("/openapi.json").json()["paths"][SETTLE]["post"]
    assert operation["summary"] == "Settle Sends"
    assert "unknown" in operation["description"]
    assert {"401", "403", "422"} <= set(operation["responses"])
