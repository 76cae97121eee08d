"""A lead is one person: every path in finds the lead an email, phone or external id names;
clashes are reported, duplicates listed and merged (issue 16), on SQLite and Postgres."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from builders import sequence, step, write
from sqlalchemy import insert, select

from nurture.store import migrate
from nurture.store.db import open_store
from nurture.store.tables import Enrollment, Execution, Lead, LeadKey


@pytest.fixture
def nurture(run_store, project: Path):
    """A Welcome sequence on two funnels, applied."""
    welcome = sequence("Welcome", step("Hi"), funnels=["Website", "Referrals"])
    write(project, "welcome.yaml", welcome)
    assert run_store("apply", "--yes").exit_code == 0
    return run_store


def add(nurture, funnel: str, *args: str):
    return nurture("leads", "add", "--funnel", funnel, "--name", "Sam Carter", *args)


def shown(nurture, ref: str) -> dict:
    result = nurture("leads", "show", ref, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def leads(nurture) -> list[dict]:
    return json.loads(nurture("leads", "list", "--json").stdout)


def test_a_lead_entering_twice_by_email_through_two_funnels_is_one_lead(nurture):
    assert (
        add(nurture, "website", "--email", "sam@example.com", "--external-id", "w-01").exit_code
        == 0
    )
    again = add(nurture, "referrals", "--email", "SAM@example.com", "--external-id", "w-99")
    assert again.exit_code == 0, again.output
    assert again.stderr.startswith("Updated lead 1 Sam Carter <sam@example.com>.")
    [lead] = leads(nurture)
    assert lead["external_id"] == "w-01"  # its first; the second is another key of it
    sam = shown(nurture, "w-99")
    assert sam["id"] == 1 and "external_id:w-99" in sam["keys"]
    assert len(sam["enrollments"]) == 1  # one welcome: re-entry never


def test_a_phone_names_the_lead_too(nurture):
    add(nurture, "website", "--phone", "+1 415 555 0100")
    again = add(nurture, "referrals", "--phone", "+14155550100", "--email", "sam@example.com")
    assert again.stderr.startswith("Updated lead 1")
    assert [lead["email"] for lead in leads(nurture)] == ["sam@example.com"]
    assert shown(nurture, "+14155550100")["id"] == 1


def test_an_import_of_two_rows_with_one_email_is_one_lead_and_one_welcome(nurture, project):
    (project / "leads.csv").write_text(
        "id,name,email\nw-01,Sam Carter,sam@example.com\nw-20,Sam C.,Sam@Example.com\n"
    )
    result = nurture("leads", "import", "leads.csv", "--funnel", "website", "--json")
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert (counts["created"], counts["updated"], counts["enrolled"]) == (1, 1, 1)
    add(nurture, "website", "--email", "sam@example.com", "--external-id", "w-99")
    [lead] = leads(nurture)
    assert lead["name"] == "Sam Carter"  # leads add named it last
    assert {"external_id:w-01", "external_id:w-20", "external_id:w-99"} <= set(
        shown(nurture, "w-20")["keys"]
    )
    again = json.loads(nurture("leads", "import", "leads.csv", "-f", "website", "--json").stdout)
    assert again["created"] == 0 and len(leads(nurture)) == 1


def test_keys_of_two_leads_are_reported_never_merged(nurture, project):
    add(nurture, "website", "--email", "sam@example.com")
    nurture("leads", "add", "-f", "website", "--name", "Bo", "--phone", "+14155550100")
    clash = add(nurture, "website", "--email", "sam@example.com", "--phone", "+14155550100")
    assert clash.exit_code == 0, clash.output
    assert "warning: phone +14155550100 is lead 2's (Bo): left out, not merged into lead 1" in (
        clash.stderr
    )
    assert "nurture leads merge 1 2" in clash.stderr
    assert shown(nurture, "1")["phone"] is None and len(leads(nurture)) == 2
    as_json = json.loads(
        add(
            nurture, "website", "--email", "sam@example.com", "--phone", "+14155550100", "--json"
        ).stdout
    )
    assert as_json["clashes"] == [
        {"kind": "phone", "value": "+14155550100", "lead_id": 2, "name": "Bo"}
    ]
    (project / "more.csv").write_text("name,email,phone\nSam,sam@example.com,+14155550100\n")
    imported = nurture("leads", "import", "more.csv", "-f", "website")
    assert imported.exit_code == 0, imported.output
    assert (
        "warning: row 2: phone +14155550100 is lead 2 (Bo)'s: left out, not merged into lead 1"
        in (imported.stderr)
    )


@pytest.fixture
def twins(nurture, project):
    """Two leads with one email, stored while identity matched by external id only."""
    toml = project / "nurture.toml"
    toml.write_text(toml.read_text() + '\n[leads]\nidentity = ["external_id"]\n')
    add(nurture, "website", "--email", "sam@example.com", "--external-id", "w-01", "--tag", "vip")
    add(nurture, "referrals", "--email", "sam@example.com", "--external-id", "w-20",
        "--tag", "webinar", "--field", "goal=strength")  # fmt: skip
    nurture("leads", "opt-out", "2", "-c", "sms")
    assert nurture("run", "--once").exit_code == 0  # both got the welcome: executions to keep
    toml.write_text(toml.read_text().replace('identity = ["external_id"]', ""))
    return nurture


def test_duplicates_are_listed_and_a_lookup_by_email_does_not_pick_one(twins):
    listed = twins("leads", "duplicates", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == [
        {"kind": "email", "value": "sam@example.com",
         "leads": [{"id": 1, "name": "Sam Carter"}, {"id": 2, "name": "Sam Carter"}]}
    ]  # fmt: skip
    assert "leads merge 1 2" in twins("leads", "duplicates").stdout
    explained = twins("explain", "sam@example.com")
    assert explained.exit_code == 1
    assert "'sam@example.com' names 2 leads: 1 Sam Carter, 2 Sam Carter" in explained.stderr
    assert "nurture leads merge 1 2" in explained.stderr


def test_merge_keeps_every_history_row_and_the_stricter_opt_out(twins, store_url):
    with open_store(store_url) as store, store.begin() as connection:
        before = connection.execute(select(Execution.id)).scalars().all()
    assert len(before) == 2
    merged = twins("leads", "merge", "1", "2", "--yes", "--json")
    assert merged.exit_code == 0, merged.output
    lead = json.loads(merged.stdout)
    assert lead["id"] == 1 and lead["tags"] == ["vip", "webinar"]
    assert lead["fields"] == {"goal": "strength"} and lead["opted_out"] == ["sms"]
    assert {"external_id:w-01", "external_id:w-20", "email:sam@example.com"} <= set(lead["keys"])
    assert lead["merge"]["moved"]["execution"] == 1 and lead["merge"]["moved"]["enrollment"] == 1
    assert len(lead["executions"]) == 2 and len(lead["enrollments"]) == 2
    with open_store(store_url) as store, store.begin() as connection:
        assert connection.execute(select(Execution.lead_id)).scalars().all() == [1, 1]
        assert connection.execute(select(Lead.id)).scalars().all() == [1]
    assert twins("leads", "duplicates", "--json").stdout.strip() == "[]"
    assert shown(twins, "w-20")["id"] == 1 and shown(twins, "sam@example.com")["id"] == 1
    again = twins("leads", "merge", "1", "2", "--yes")
    assert (
        again.exit_code == 0 and "Lead 2 was merged into lead 1 Sam Carter already." in again.stderr
    )
    opted = [e for e in json.loads(twins("leads", "show", "1", "--json").stdout)["executions"]]
    assert len(opted) == 2


def test_merge_asks_first_without_yes(twins):
    refused = twins("leads", "merge", "1", "2")
    assert refused.exit_code == 1
    assert "refusing to merge leads without a terminal to confirm on; add --yes" in refused.stderr
    assert len(leads(twins)) == 2


def test_a_merge_of_leads_in_one_sequence_stops_the_twin_enrollment(nurture, project):
    toml = project / "nurture.toml"
    toml.write_text(toml.read_text() + '\n[leads]\nidentity = ["external_id"]\n')
    add(nurture, "website", "--email", "sam@example.com", "--external-id", "w-01")
    add(nurture, "website", "--email", "sam@example.com", "--external-id", "w-20")
    lead = json.loads(nurture("leads", "merge", "1", "2", "--yes", "--json").stdout)
    assert sorted(e["status"] for e in lead["enrollments"]) == ["active", "stopped"]
    assert lead["merge"]["stopped"] == [2]


def test_the_migration_keeps_the_first_of_old_duplicates(run, project, store_url, monkeypatch):
    """Keys are backfilled from the leads stored before 0017; duplicates do not fail it."""
    migrate.upgrade(store_url, "0016")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"name": name, "first_name": name, "email": "sam@example.com", "phone": phone,
         "external_id": ext, "score": 0, "tags": [], "fields": {}, "opted_out": [],
         "created_at": at, "updated_at": at}
        for name, phone, ext in (("Sam", "+14155550100", "w-01"), ("Sam C", None, "w-20"))
    ]  # fmt: skip
    with migrate.engine_for(store_url) as engine, engine.begin() as connection:
        connection.execute(insert(Lead), rows)
    migrate.upgrade(store_url)
    with open_store(store_url) as store, store.begin() as connection:
        keys = connection.execute(
            select(LeadKey.kind, LeadKey.value, LeadKey.lead_id).order_by(LeadKey.kind)
        ).all()
    assert sorted(keys) == [
        ("email", "sam@example.com", 1),
        ("external_id", "w-01", 1),
        ("external_id", "w-20", 2),
        ("phone", "+14155550100", 1),
    ]
    monkeypatch.setenv("NURTURE_AUTO_MIGRATE", "true")
    listed = run("--database-url", store_url, "leads", "duplicates", "--json")
    assert [group["leads"] for group in json.loads(listed.stdout)] == [
        [{"id": 1, "name": "Sam"}, {"id": 2, "name": "Sam C"}]
    ]


def test_enrollments_are_one_per_person(store_url, nurture):
    add(nurture, "website", "--email", "sam@example.com")
    add(nurture, "referrals", "--email", "sam@example.com", "--external-id", "x")
    with open_store(store_url) as store, store.begin() as connection:
        assert len(connection.execute(select(Enrollment.id)).all()) == 1


def test_the_webhook_answers_with_the_keys_it_left_out(nurture, project, store_url):
    from serving import serving, token

    add(nurture, "website", "--email", "sam@example.com")
    nurture("leads", "add", "-f", "website", "--name", "Bo", "--phone", "+14155550100")
    ingest = token(nurture, "landing", "ingest")
    with serving(project, store_url) as api:
        lead = {"funnel": "website", "name": "Sam", "email": "sam@example.com",
                "phone": "+1 415 555 0100", "externalId": "crm-9"}  # fmt: skip
        answer = api.post("/api/leads", json=lead, headers=ingest)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["leadId"] == 1 and body["created"] is False
        assert body["clashes"] == [
            {"kind": "phone", "value": "+14155550100", "leadId": 2, "name": "Bo"}
        ]
        reader = token(nurture, "crm", "read")
        assert "external_id:crm-9" in api.get("/api/leads/crm-9", headers=reader).json()["keys"]
