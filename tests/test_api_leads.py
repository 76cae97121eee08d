"""Leads over HTTP: the funnel webhook enrolls at once, idempotently; lookups, changes, events."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from builders import sequence, step, write
from serving import serving, token
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from nurture.api import batching
from nurture.api.batching import Pending
from nurture.errors import KeyReused, StoreError
from nurture.leads import arrivals, consent, ingest
from nurture.leads.arrivals import Arrival
from nurture.leads.records import LeadInput
from nurture.store.tables import Enrollment, IngestKey, Lead

WARM = {"lead_temperature": ["Warm", "Hot"], "lead_score": {"min": 30, "max": 70}}
SEED_LEAD = {  # as the seed system's funnels post them: camelCase, lead-prefixed fields
    "funnel": "website",
    "name": "Dr. Ana Ruiz",
    "email": "Ana@Example.COM",
    "leadScore": 50,
    "leadSource": "Web Form",
    "leadStatus": "New",
    "leadTemperature": "Warm",
    "customFields": {"goal": "strength"},
    "externalId": "crm-17",
}


@pytest.fixture
def api(run_store, project, store_url):
    """Welcome (warm leads) on `website`; the API with an ingest and a write token."""
    welcome = sequence(
        "Welcome", step("Hi"), step("Later", delay_days=2), funnels=["Website"],
        trigger_conditions=WARM,
    )  # fmt: skip
    write(project, "welcome.yaml", welcome)
    assert run_store("apply", "--yes").exit_code == 0
    with serving(project, store_url) as client:
        client.ingest = token(run_store, "landing-page", "ingest")
        client.admin = token(run_store, "crm", "write")
        yield client


def post(api, lead: dict, **headers: str):
    return api.post("/api/leads", json=lead, headers=api.ingest | headers)


def count(api, model) -> int:
    with api.app.state.context.store.begin() as connection:
        return connection.execute(select(func.count()).select_from(model)).scalar_one()


def test_the_webhook_stores_matches_and_enrolls_at_once(api):
    before = datetime.now(UTC)
    answer = post(api, SEED_LEAD)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body == body | {"leadId": 1, "created": True, "replayed": False, "sequence": "Welcome"}
    assert body["reason"] == "the only matching sequence"
    assert body["firstStep"]["stepId"] == "hi"
    assert datetime.fromisoformat(body["firstStep"]["dueAt"]) >= before.replace(microsecond=0)
    lead = api.get("/api/leads/crm-17", headers=api.admin).json()
    assert lead["name"] == "Dr. Ana Ruiz" and lead["firstName"] == "Ana"
    assert lead["email"] == "ana@example.com" and lead["funnel"] == "Website"
    assert lead["fields"] == {"goal": "strength"} and lead["score"] == 50
    assert [(e["sequence"], e["status"], e["stepId"]) for e in lead["enrollments"]] == [
        ("Welcome", "active", "hi")
    ]
    assert api.get("/api/leads/1", headers=api.admin).json() == lead
    assert api.get("/api/leads/Ana@example.com", headers=api.admin).json()["id"] == 1


def test_a_lead_no_sequence_wants_is_stored_with_the_reason(api):
    answer = post(api, SEED_LEAD | {"leadTemperature": "Cold", "externalId": "crm-18"})
    assert answer.status_code == 201
    assert answer.json()["sequence"] is None and answer.json()["firstStep"] is None
    assert "lead_temperature: wants Warm or Hot, lead has 'Cold'" in answer.json()["reason"]


def test_a_retry_with_the_same_idempotency_key_changes_nothing(api):
    lead = {"funnel": "website", "name": "Bo", "email": "bo@example.com", "leadScore": 40,
            "leadTemperature": "Hot"}  # fmt: skip
    first = post(api, lead, **{"Idempotency-Key": "form-submission-1"})
    again = post(api, dict(reversed(lead.items())), **{"Idempotency-Key": "form-submission-1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json() | {"replayed": True}
    assert count(api, Lead) == 1 and count(api, Enrollment) == 1 and count(api, IngestKey) == 1
    assert api.get("/api/leads/1", headers=api.admin).json()["name"] == "Bo"


def test_an_idempotency_key_sent_again_with_another_body_is_refused(api):
    lead = {"funnel": "website", "name": "Bo", "email": "bo@example.com"}
    assert post(api, lead, **{"Idempotency-Key": "form-1"}).status_code == 201
    other = post(
        api, lead | {"name": "Cy", "email": "cy@example.com"}, **{"Idempotency-Key": "form-1"}
    )
    assert other.status_code == 422
    assert other.json() == {
        "message": "Idempotency-Key 'form-1' was used with a different body: "
        "send the first body again, or a new key for another lead"
    }
    both = [  # the same key twice in one batch: the second, with another body, is refused too
        Pending(Arrival(LeadInput(name=name, email=f"{name}@example.com"), "website"), "form-2")
        for name in ("dee", "eve")
    ]
    first, second = api.app.state.batcher.store_batch(both)
    assert first["created"] is True and isinstance(second, KeyReused)
    assert count(api, Lead) == 2 and count(api, IngestKey) == 2


def test_the_same_external_id_again_is_a_replay_and_a_change_an_update(api):
    assert post(api, SEED_LEAD).status_code == 201
    again = post(api, SEED_LEAD)
    assert again.status_code == 200
    assert again.json() | {"replayed": True} == again.json()
    assert again.json()["sequence"] == "Welcome" and again.json()["firstStep"]["stepId"] == "hi"
    changed = post(api, SEED_LEAD | {"leadScore": 60})
    assert changed.status_code == 200
    assert changed.json()["created"] is False and changed.json()["replayed"] is False
    assert "already enrolled in Welcome before (re_entry: never)" in changed.json()["reason"]
    assert count(api, Lead) == 1 and count(api, Enrollment) == 1


def test_concurrent_posts_are_each_answered_and_enrolled(api):
    leads = [
        {
            "funnel": "website",
            "name": f"Lead {n}",
            "email": f"lead{n}@example.com",
            "leadScore": 50,
            "leadTemperature": "Warm",
        }  # fmt: skip
        for n in range(40)
    ]
    leads[7]["email"] = "not-an-email"
    leads[9]["funnel"] = "nowhere"
    leads[11]["externalId"] = "form-11"
    leads[12] = leads[11]  # the same lead twice at once: stored once, the second a replay
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda lead: post(api, lead), leads))
    codes = [answer.status_code for answer in answers]
    assert codes[7] == 422 and answers[7].json()["field"] == "email"
    assert codes[9] == 404 and "no funnel 'nowhere'" in answers[9].json()["message"]
    assert sorted([codes[11], codes[12]]) == [200, 201]
    good = [a.json() for n, a in enumerate(answers) if n not in (7, 9)]
    assert all(a["sequence"] == "Welcome" for a in good)
    assert len({a["leadId"] for a in good}) == 37
    assert count(api, Lead) == 37 and count(api, Enrollment) == 37


def test_two_servers_posting_one_email_at_once_store_one_lead(api, project, store_url, monkeypatch):
    real = arrivals._known_keys

    def slow_lookup(session, keys):  # widens the gap between the lookup and the insert
        found = real(session, keys)
        time.sleep(0.2)
        return found

    monkeypatch.setattr(arrivals, "_known_keys", slow_lookup)
    lead = {"funnel": "website", "name": "Bo", "email": "bo@example.com", "leadScore": 50,
            "leadTemperature": "Warm"}  # fmt: skip
    with serving(project, store_url) as other:  # `nurture serve --workers 2`
        other.ingest, servers = api.ingest, [api, other] * 10
        for server in (api, other):  # FastAPI builds its routes at the first request: one at a
            server.get("/api/leads/0")  # time, as its warnings filters are the process's
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda server: post(server, lead), servers))
    assert sorted(answer.status_code for answer in answers) == [200] * 19 + [201]
    assert {answer.json()["leadId"] for answer in answers} == {1}
    assert count(api, Lead) == 1 and count(api, Enrollment) == 1


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"email": "ana@"}, "email", "invalid email 'ana@'"),
        ({"phone": "555 1234"}, "phone", "invalid phone '555 1234': no country code"),
        ({"timezone": "Mars/Olympus"}, "timezone", "'Mars/Olympus' is not an IANA time zone"),
        ({"name": ""}, "name", "String should have at least 1 character"),
        ({"funnel": None}, "funnel", "Input should be a valid string"),
        ({"tags": "vip"}, "tags", "Input should be a valid list"),
    ],
)
def test_bad_leads_are_422_naming_the_field(api, change, field, message):
    answer = post(api, SEED_LEAD | change)
    assert answer.status_code == 422
    assert answer.json()["field"] == field
    assert message in answer.json()["message"]
    assert count(api, Lead) == 0


def test_patch_changes_the_lead_and_a_conversion_stops_its_enrollments(api):
    post(api, SEED_LEAD)
    patched = api.patch(
        "/api/leads/crm-17",
        json={"tags": ["vip"], "customFields": {"plan": "gold"}, "leadScore": 70},
        headers=api.admin,
    )
    assert patched.status_code == 200, patched.text
    lead = patched.json()
    assert lead["tags"] == ["vip"] and lead["score"] == 70
    assert lead["fields"] == {"goal": "strength", "plan": "gold"}
    won = api.patch("/api/leads/1", json={"leadStatus": "Won"}, headers=api.admin).json()
    assert won["status"] == "Won" and won["convertedAt"] is not None
    assert [(e["status"], e["exitReason"]) for e in won["enrollments"]] == [
        ("converted", "the lead converted")
    ]
    assert api.patch("/api/leads/99", json={}, headers=api.admin).status_code == 404


def test_patch_refuses_an_external_id_or_an_email_another_lead_has(api):
    post(api, SEED_LEAD)
    bo = {"funnel": "website", "name": "Bo Lee", "email": "bo@example.com", "externalId": "crm-18"}
    post(api, bo)
    taken = api.patch("/api/leads/crm-18", json={"externalId": "crm-17"}, headers=api.admin)
    assert taken.status_code == 409
    assert taken.json() == {
        "message": "external id 'crm-17' belongs to lead 1 (Dr. Ana Ruiz)",
        "field": "externalId",
    }
    shared = api.patch("/api/leads/crm-18", json={"email": "Ana@EXAMPLE.com"}, headers=api.admin)
    assert shared.status_code == 409
    assert shared.json() == {
        "message": "email 'ana@example.com' belongs to lead 1 (Dr. Ana Ruiz)",
        "field": "email",
    }
    lead = api.get("/api/leads/2", headers=api.admin).json()
    assert (lead["externalId"], lead["email"]) == ("crm-18", "bo@example.com")
    own = api.patch("/api/leads/crm-17", json={"externalId": "crm-17"}, headers=api.admin)
    assert own.status_code == 200


def test_events_convert_tag_and_custom(api):
    post(api, SEED_LEAD)
    events = "/api/leads/crm-17/events"
    tagged = api.post(events, json={"type": "tag", "value": "webinar"}, headers=api.ingest)
    assert tagged.status_code == 200 and tagged.json()["tags"] == ["webinar"]
    custom = api.post(
        events, json={"type": "custom", "name": "booked_call", "value": "2026-12-01"},
        headers=api.ingest,
    )  # fmt: skip
    assert custom.json()["fields"]["booked_call"] == "2026-12-01"
    converted = api.post(events, json={"type": "convert"}, headers=api.ingest).json()
    assert converted["status"] == "Converted" and converted["convertedAt"] is not None
    assert converted["enrollments"][0]["status"] == "converted"


def test_events_opt_out_opt_in_and_inbound_go_through_consent(api):
    post(api, SEED_LEAD)
    events = "/api/leads/crm-17/events"

    def event(**body):
        answer = api.post(events, json=body, headers=api.ingest)
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert event(type="opt-out", channel="sms")["optedOut"] == ["sms"]
    assert event(type="opt-out", channel="all")["optedOut"] == ["whatsapp", "sms", "email"]
    assert event(type="opt-in", channel="whatsapp")["optedOut"] == ["sms", "email"]
    wrote = event(type="inbound", value="Thanks, see you Monday")
    assert wrote["optedOut"] == ["sms", "email"]
    assert datetime.fromisoformat(wrote["lastInboundAt"]) <= datetime.now(UTC)
    stop = event(type="inbound", value=" Stop ", channel="whatsapp")
    assert stop["optedOut"] == ["whatsapp", "sms", "email"]
    assert event(type="inbound", value="START", channel="sms")["optedOut"] == ["whatsapp", "email"]
    with api.app.state.context.store.session() as session:
        kept = consent.history(session, session.get(Lead, 1))
        assert [(e.action, e.channel, e.source) for e in kept][-2:] == [
            ("opt_out", "whatsapp", "inbound"), ("opt_in", "sms", "inbound"),
        ]  # fmt: skip
        assert {e.source for e in kept[:4]} == {"api"}


def test_bad_events_are_refused_with_the_reason(api):
    post(api, SEED_LEAD)
    url = "/api/leads/1/events"
    no_channel = api.post(url, json={"type": "opt-out"}, headers=api.ingest)
    assert no_channel.status_code == 400
    assert no_channel.json()["message"].startswith("an opt-out event needs a channel")
    unknown = api.post(url, json={"type": "opt-in", "channel": "fax"}, headers=api.ingest)
    assert unknown.status_code == 400 and "unknown channel 'fax'" in unknown.json()["message"]
    kind = api.post(url, json={"type": "bounce"}, headers=api.ingest)
    assert kind.status_code == 422 and kind.json()["field"] == "type"
    empty = api.post(url, json={"type": "status"}, headers=api.ingest)
    assert empty.status_code == 400 and empty.json() == {"message": "a status event needs a value"}


def test_a_batch_that_clashes_with_another_process_is_stored_lead_by_lead(api, monkeypatch):
    real, calls = ingest.remember_many, []

    def clash_once(session, answers, now):
        calls.append(len(answers))
        if len(calls) == 1:  # as if another server had kept one of these keys a moment before
            raise IntegrityError("INSERT INTO ingest_key", {}, Exception("duplicate key"))
        return real(session, answers, now)

    monkeypatch.setattr(ingest, "remember_many", clash_once)
    leads = [
        Pending(Arrival(LeadInput(name=f"Lead {n}", email=f"l{n}@example.com"), "website"), f"k{n}")
        for n in range(3)
    ]
    answers = api.app.state.batcher.store_batch(leads)
    assert calls == [3, 1, 1, 1]
    assert [a["created"] for a in answers] == [True, True, True]
    assert len({a["leadId"] for a in answers}) == 3  # Postgres does not reuse rolled-back ids
    assert count(api, Lead) == 3 and count(api, IngestKey) == 3


def test_a_store_that_fails_answers_503_and_the_webhook_keeps_serving(api, monkeypatch):
    def unreachable(*args, **kwargs):
        raise StoreError("cannot use the store: connection refused")

    monkeypatch.setattr(batching, "arrive_many", unreachable)
    answer = post(api, SEED_LEAD)
    assert answer.status_code == 503
    assert answer.json() == {"message": "the store is unavailable: the server's log says why"}
    monkeypatch.undo()
    assert post(api, SEED_LEAD).status_code == 201


def post_raw(api, url: str, body: str, method: str = "POST"):
    """A JSON body as written (json= cannot send a lone surrogate's escape, NaN or 5,000 digits)."""
    headers = api.admin | {"Content-Type": "application/json"}
    return api.request(method, url, content=body.encode(), headers=headers)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ('"name": "Ana\\u0000Ruiz"', "name", "contains a NUL character (\\x00): remove it"),
        ('"externalId": "crm-\\u00001"', "externalId", "contains a NUL character"),
        ('"name": "Ana \\ud83d"', "name", "not valid Unicode text: it holds a lone surrogate"),
        ('"leadSource": "Web\\u0000"', "leadSource", "contains a NUL character"),
        ('"tags": ["vip\\u0000"]', "tags.0", "contains a NUL character"),
        ('"customFields": {"go\\u0000al": 1}', "fields", "custom field name 'go\\x00al' contains"),
        ('"customFields": {"goal": "a\\u0000"}', "fields.goal", "fields.goal contains a NUL"),
        ('"customFields": {"goal": NaN}', "fields.goal", "fields.goal is nan, not a usable"),
        ('"customFields": {"a": [[[[[[[[[[[[1]]]]]]]]]]]]}', "fields.a", "nests lists or objects"),
        (f'"name": "{"A" * 201}"', "name", "String should have at most 200 characters"),
        (f'"externalId": "{"c" * 201}"', "externalId", "String should have at most 200"),
        (f'"customFields": {{"notes": "{"n" * 10_001}"}}', "fields.notes", "10,001 characters"),
    ],
)
def test_a_value_the_store_cannot_keep_is_a_422_naming_the_field(api, body, field, message):
    lead = '{"funnel": "website", "name": "Ana Ruiz", "email": "ana@example.com", '
    answer = post_raw(api, "/api/leads", lead + body + "}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert message in answer.json()["message"]
    assert count(api, Lead) == 0


def test_a_body_json_cannot_hold_is_refused_not_a_500(api):
    digits = post_raw(
        api, "/api/leads", f'{{"funnel": "website", "name": "Ana", "score": {"9" * 5000}}}'
    )
    deep = post_raw(
        api,
        "/api/leads",
        '{"funnel": "website", "name": "Ana", "fields": ' + "[" * 100_000 + "]" * 100_000 + "}",
    )
    assert (digits.status_code, deep.status_code) == (400, 400), (digits.text, deep.text)
    assert count(api, Lead) == 0


def test_a_one_word_name_longer_than_first_names_column_is_stored_whole(api):
    name = "Ana" + "a" * 147
    answer = post(api, SEED_LEAD | {"name": name})
    assert answer.status_code == 201, answer.text
    lead = api.get("/api/leads/crm-17", headers=api.admin).json()
    assert (lead["name"], lead["firstName"]) == (name, name[:100])


def test_changes_and_events_the_store_cannot_keep_are_a_422_naming_the_field(api):
    post(api, SEED_LEAD)
    patched = post_raw(api, "/api/leads/1", '{"leadStatus": "Won\\u0000"}', "PATCH")
    assert patched.status_code == 422 and patched.json()["field"] == "leadStatus"
    url = "/api/leads/1/events"
    status = post_raw(api, url, '{"type": "status", "value": "Won\\u0000"}')
    assert status.status_code == 422 and status.json()["field"] == "value"
    custom = post_raw(api, url, '{"type": "custom", "name": "goal\\ud800"}')
    assert custom.status_code == 422 and custom.json()["field"] == "name"
    long = post_raw(api, url, f'{{"type": "custom", "name": "goal", "value": "{"v" * 10_001}"}}')
    assert long.status_code == 422 and long.json()["field"] == "fields.goal"
    assert "over the limit of 10,000" in long.json()["message"]
    lead = api.get("/api/leads/1", headers=api.admin).json()
    assert (lead["status"], lead["fields"]) == ("New", {"goal": "strength"})


def test_a_lead_reference_the_store_cannot_hold_is_a_404(api):
    for ref in ("crm%0017", "crm%ED%A0%80", "x" * 400):
        answer = api.get(f"/api/leads/{ref}", headers=api.admin)
        assert answer.status_code == 404, (ref, answer.text)
        assert answer.json()["message"].startswith("no lead ")


def test_the_lean_path_answers_as_the_route_does(api, monkeypatch):
    """A trusted token's plain posts skip FastAPI (nurture.api.intake): the answers, errors
    included, are the route's, and a lead is stored once."""
    from nurture.api import leads as route

    answered: list[int] = []

    def counted(*args, **kwargs):
        answered.append(kwargs["status_code"])
        return JSONResponse(*args, **kwargs)

    JSONResponse = route.JSONResponse
    monkeypatch.setattr(route, "JSONResponse", counted)
    trusted = api.app.state.context.tokens.trusted

    def twice(lead: dict, **headers: str):
        trusted.clear()  # the token not checked yet: FastAPI's route answers
        routed = post(api, lead, **headers)
        return routed, post(api, lead, **headers)  # trusted now: the lean path

    new = post(api, SEED_LEAD | {"externalId": "crm-1", "email": "one@example.com"})
    lean = post(api, SEED_LEAD | {"externalId": "crm-2", "email": "two@example.com"})
    assert (new.status_code, lean.status_code) == (201, 201)
    assert set(new.json()) == set(lean.json()) and lean.json()["sequence"] == "Welcome"
    assert answered == [201]  # the second took the lean path
    for bad in ({"leadScore": 101}, {"funnel": "nowhere"}, {"customFields": {"a\x00": 1}}):
        routed, again = twice(SEED_LEAD | {"externalId": "crm-9"} | bad)
        assert routed.status_code in (404, 422) and routed.json()["message"]
        assert (again.status_code, again.json()) == (routed.status_code, routed.json())
    first = post(api, {"funnel": "website", "name": "Bo"}, **{"Idempotency-Key": "k"})
    routed, again = twice({"funnel": "website", "name": "Cy"}, **{"Idempotency-Key": "k"})
    assert first.status_code == 201 and routed.status_code == again.status_code == 422
    assert routed.json() == again.json() and "Idempotency-Key 'k'" in again.json()["message"]
    form = api.post("/api/leads", content=b"name=Ana", headers=api.ingest | {
        "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert form.status_code == 415
    assert count(api, Lead) == 3 and count(api, Enrollment) == 2
