"""`nurture tokens` and how `nurture serve` checks them; errors, body limits, health, metrics."""

import json
from datetime import UTC, datetime

import pytest
from builders import sequence, step, write
from serving import serving, token
from sqlalchemy.exc import IntegrityError

from nurture.api import auth
from nurture.store.tables import ApiToken


@pytest.fixture
def api(run_store, project, store_url):
    """A project with one sequence on the `website` funnel, applied; the API on its store."""
    write(project, "welcome.yaml", sequence("Welcome", step("Hi"), funnels=["website"]))
    assert run_store("apply", "--yes").exit_code == 0
    with serving(project, store_url) as client:
        yield client


LEAD = {"funnel": "website", "name": "Ana Ruiz", "email": "ana@example.com"}


def test_a_token_is_shown_once_and_stored_hashed(run_store, project, store_url):
    created = run_store("tokens", "create", "landing-page", "--scope", "ingest")
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("nrt_") and len(secret) > 40
    assert "copy it now, it is not shown again" in created.stderr
    listed = run_store("tokens", "list", "--json")
    assert secret not in listed.stdout
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["scopes"], r["revoked_at"]) for r in rows] == [
        ("landing-page", ["ingest"], None)
    ]
    dumped = run_store("tokens", "list").stdout
    assert "landing-page" in dumped and secret not in dumped


def test_token_names_and_scopes_are_checked(run_store, project):
    assert run_store("tokens", "create", "ci", "--scope", "read").exit_code == 0
    again = run_store("tokens", "create", "ci", "--scope", "read")
    assert again.exit_code == 1 and "a token named 'ci' exists already" in again.stderr
    bad = run_store("tokens", "create", "x", "--scope", "admin")
    assert bad.exit_code == 1 and "scope must be one or more of read, write, ingest" in bad.stderr
    missing = run_store("tokens", "revoke", "nobody")
    assert missing.exit_code == 1 and "no live token named 'nobody'" in missing.stderr


def test_a_revoked_tokens_name_can_be_used_again(api, run_store, monkeypatch):
    monkeypatch.setattr(auth, "TRUST_SECONDS", 0.0)
    old = token(run_store, "reader", "read")
    assert run_store("tokens", "revoke", "reader").exit_code == 0
    new = token(run_store, "reader", "read")  # rotation
    assert api.get("/api/nurturing-sequences", headers=old).status_code == 401
    assert api.get("/api/nurturing-sequences", headers=new).status_code == 200
    listed = json.loads(run_store("tokens", "list", "--json").stdout)
    assert [(row["name"], row["revoked_at"] is None) for row in listed] == [
        ("reader", False),
        ("reader", True),
    ]
    again = run_store("tokens", "create", "reader", "--scope", "read")
    assert again.exit_code == 1 and "a token named 'reader' exists already" in again.stderr
    now = datetime.now(UTC)
    twin = ApiToken(name="reader", token_hash="0" * 64, scopes=["read"], created_at=now)
    with pytest.raises(IntegrityError), api.app.state.context.store.session() as session:
        session.add(twin)  # the store itself keeps one live token per name


def test_no_token_or_a_wrong_one_is_401(api):
    for headers in ({}, {"Authorization": "Bearer nrt_not-a-token"}, {"Authorization": "Basic x"}):
        answer = api.get("/api/nurturing-sequences", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert set(answer.json()) == {"message"}


def test_a_token_outside_its_scope_is_403(api, run_store):
    ingest = token(run_store, "landing-page", "ingest")
    read = token(run_store, "dashboard", "read")
    assert api.post("/api/leads", json=LEAD, headers=ingest).status_code == 201
    refused = api.get("/api/nurturing-sequences", headers=ingest)
    assert refused.status_code == 403
    assert refused.json() == {"message": "token 'landing-page' lacks the read scope"}
    assert api.get("/api/nurturing-sequences", headers=read).status_code == 200
    assert api.post("/api/leads", json=LEAD, headers=read).status_code == 403
    assert api.patch("/api/leads/1", json={"score": 5}, headers=read).status_code == 403


def test_write_includes_read(api, run_store):
    write_token = token(run_store, "admin", "write")
    assert api.get("/api/nurturing-sequences", headers=write_token).status_code == 200
    assert api.get("/api/leads/1", headers=write_token).status_code == 404


def test_a_revoked_token_is_refused(api, run_store, monkeypatch):
    monkeypatch.setattr(auth, "TRUST_SECONDS", 0.0)  # no grace period: refused at once
    headers = token(run_store, "old", "read")
    assert api.get("/api/nurturing-sequences", headers=headers).status_code == 200
    revoked = run_store("tokens", "revoke", "old")
    assert revoked.exit_code == 0 and "revoked token 'old'" in revoked.stderr
    assert api.get("/api/nurturing-sequences", headers=headers).status_code == 401
    listed = json.loads(run_store("tokens", "list", "--json").stdout)
    assert listed[0]["revoked_at"] is not None


def test_a_checked_token_is_trusted_for_a_moment(api, run_store):
    headers = token(run_store, "busy", "read")
    assert api.get("/api/nurturing-sequences", headers=headers).status_code == 200
    run_store("tokens", "revoke", "busy")
    assert api.get("/api/nurturing-sequences", headers=headers).status_code == 200  # < 2 s on


def test_a_body_over_the_limit_is_413(run_store, project, store_url):
    headers = token(run_store, "landing-page", "ingest")
    with serving(project, store_url, max_body_bytes=2048) as client:
        big = LEAD | {"fields": {"notes": "x" * 4000}}
        answer = client.post("/api/leads", json=big, headers=headers)
        assert answer.status_code == 413
        assert answer.json() == {
            "message": "the request body is larger than 2048 bytes (api.max_body_bytes)"
        }
        streamed = client.post(
            "/api/leads",
            content=(b"x" * 1024 for _ in range(4)),  # chunked: no Content-Length to go by
            headers=headers | {"Content-Type": "application/json"},
        )
        assert streamed.status_code == 413


def test_errors_are_json_with_the_field_path(api, run_store):
    headers = token(run_store, "landing-page", "ingest")
    answer = api.post("/api/leads", json=LEAD | {"leadScore": 140}, headers=headers)
    assert answer.status_code == 422
    assert answer.json() == {
        "message": "Input should be less than or equal to 100",
        "field": "leadScore",
    }
    json_type = {"Content-Type": "application/json"}
    answer = api.post(
        "/api/leads", content=b'{"name": "Bo",\n not json', headers=headers | json_type
    )
    assert answer.status_code == 422
    assert answer.json() == {
        "message": "the body is not valid JSON: "
        "Expecting property name enclosed in double quotes (line 2, column 2)"
    }
    form = api.post("/api/leads", data={"name": "Bo"}, headers=headers)
    assert form.status_code == 415
    assert form.json() == {"message": "send the body as JSON (Content-Type: application/json)"}
    missing = api.post("/api/leads", headers=headers | json_type)
    assert missing.json() == {"message": "the body is missing: send a JSON object"}
    listed = api.post("/api/leads", json=[LEAD], headers=headers)
    assert listed.status_code == 422 and "field" not in listed.json()
    unknown = api.post("/api/leads", json=LEAD | {"nmae": "x"}, headers=headers)
    assert unknown.json() == {"message": "Extra inputs are not permitted", "field": "nmae"}


def test_a_method_a_path_does_not_serve_is_405_with_the_allowed_ones(api, run_store):
    headers = token(run_store, "admin", "write")
    answer = api.patch("/api/nurturing-sequences/1", json={}, headers=headers)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, PUT, DELETE"
    assert answer.json() == {"message": "PATCH is not allowed here: use GET, PUT, DELETE"}
    assert api.delete("/api/leads/1", headers=headers).headers["allow"] == "GET, PATCH"


def test_healthz_says_the_store_is_current(api):
    answer = api.get("/healthz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert answer.json()["revision"] == answer.json()["head"]


def test_healthz_is_503_when_the_store_is_behind(api):
    with api.app.state.context.store.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0002'")
    answer = api.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable"
    assert "run `nurture db upgrade`" in answer.json()["message"]


def test_metrics_come_from_the_store(api, run_store):
    ingest = token(run_store, "landing-page", "ingest")
    for number in range(3):
        lead = LEAD | {"email": f"lead{number}@example.com"}
        assert api.post("/api/leads", json=lead, headers=ingest).status_code == 201
    assert api.get("/metrics", headers=ingest).status_code == 403
    answer = api.get("/metrics", headers=token(run_store, "prometheus", "read"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    lines = set(answer.text.splitlines())
    assert "nurture_leads_ingested_total 3.0" in lines
    assert 'nurture_enrollments{status="active"} 3.0' in lines
    assert "nurture_due_backlog 3.0" in lines  # the first step is due at once
    assert any(line.startswith("nurture_lag_seconds ") for line in lines)
