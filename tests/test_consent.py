"""Consent from the command line: opt-out and opt-in per channel, inbound STOP, unsubscribe."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from builders import sequence, step, write
from enrolling import T0, apply, drain, enroll, enrollment, executions

from nurture.channels.unsubscribe import make_token
from nurture.errors import NotFound
from nurture.leads import consent
from nurture.store.db import open_store
from nurture.store.tables import Lead

SECRET = "s3cret"


@pytest.fixture
def nurture(run_store, project: Path):
    """A project whose sequence texts a lead at once, with one lead in it (id 1)."""
    write(project, "texts.yaml", sequence("Texts", step("Hi"), funnels=["Website"]))
    (project / ".env").write_text(f"NURTURE_UNSUBSCRIBE__SECRET={SECRET}\n")
    assert run_store("apply", "--yes").exit_code == 0
    added = run_store(
        "leads", "add", "--funnel", "website", "--name", "Ana Ruiz", "--email", "ana@example.com",
        "--phone", "+44 7400 123456",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    return run_store


def shown(nurture) -> dict:
    return json.loads(nurture("leads", "show", "1", "--json").stdout)


def test_an_opted_out_channel_is_skipped_and_logged_never_sent(nurture):
    result = nurture("leads", "opt-out", "ana@example.com", "--channel", "sms")
    assert result.exit_code == 0, result.output
    assert "Lead 1 Ana Ruiz: opted out of sms; opted out of: sms." in result.output
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    ran = nurture("run", "--once", "--channel", "console", "--now", later)
    assert ran.exit_code == 0 and "[sms]" not in ran.stdout  # the console prints every send
    [execution] = shown(nurture)["executions"]
    assert (execution["status"], execution["error"]) == ("skipped", "lead opted out of sms")


def test_opt_out_of_all_then_back_into_one(nurture):
    nurture("leads", "opt-out", "1", "--channel", "all")
    assert shown(nurture)["opted_out"] == ["whatsapp", "sms", "email"]
    result = nurture("leads", "opt-in", "1", "-c", "email")
    assert "opted back into email; opted out of: whatsapp, sms." in result.output
    again = nurture("leads", "opt-in", "1", "-c", "email")
    assert "no change" in again.output
    wrong = nurture("leads", "opt-out", "1", "--channel", "fax")
    assert wrong.exit_code == 1
    assert "unknown channel 'fax': use one of whatsapp, sms, email, all" in wrong.output


def test_inbound_opens_the_whatsapp_window_and_stop_opts_out(nurture):
    result = nurture("leads", "inbound", "1", "--at", "2025-03-03T09:00:00Z")
    assert result.exit_code == 0, result.output
    assert "last wrote 2025-03-03 09:00 UTC" in result.output
    assert shown(nurture)["last_inbound_at"].startswith("2025-03-03")
    stop = nurture("leads", "inbound", "1", "--text", " Stop ", "--channel", "sms")
    assert "opted out of sms" in stop.output and shown(nurture)["opted_out"] == ["sms"]
    start = nurture("leads", "inbound", "1", "--text", "START", "--channel", "sms")
    assert "opted back into sms" in start.output and shown(nurture)["opted_out"] == []


def test_unsubscribe_applies_a_signed_token_once(nurture):
    token = make_token(SECRET, 1, "email")
    first = nurture("unsubscribe", token)
    assert first.exit_code == 0, first.output
    assert "Lead 1 Ana Ruiz unsubscribed from email." in first.output
    assert "(already unsubscribed)" in nurture("unsubscribe", token).output
    assert shown(nurture)["opted_out"] == ["email"]
    forged = nurture("unsubscribe", make_token("another secret", 1, "email"))
    assert forged.exit_code == 1 and "signature does not match" in forged.output


def test_inbound_stop_by_phone_number_for_the_http_api(nurture, store_url):
    now = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    with open_store(store_url) as store, store.session(immediate=True) as session:
        result = consent.inbound_from(session, "whatsapp:+447400123456", "STOP", now, "whatsapp")
        assert (result.lead.id, result.opted_out) == (1, ["whatsapp"])
        events = [
            (e.channel, e.action, e.source, e.detail) for e in consent.history(session, result.lead)
        ]
        assert events == [("whatsapp", "opt_out", "inbound", "replied 'STOP'")]
        with pytest.raises(NotFound, match="no lead with phone"):
            consent.inbound_from(session, "+447400999999", "STOP", now)
        assert session.get(Lead, 1).last_inbound_at == now


def test_config_show_masks_secrets(project: Path, run):
    (project / "nurture.toml").write_text(
        '[email]\nhost = "smtp.example.com"\nfrom_address = "coach@example.com"\n'
        'username = "coach@example.com"\n[rate_limits]\nemail = 5\n'
    )
    (project / ".env").write_text("NURTURE_EMAIL__PASSWORD=hunter2\n")
    result = run("config", "show")
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert '[email]\nhost = "smtp.example.com"\n' in result.output
    assert (
        'password = "**********"' in result.output and "[rate_limits]\nemail = 5.0" in result.output
    )
    data = json.loads(run("config", "show", "--json").stdout)
    assert data["email"]["password"] == "**********" and data["twilio"] is None


def test_a_secret_in_nurture_toml_is_refused(project: Path, run):
    (project / "nurture.toml").write_text(
        '[twilio]\naccount_sid = "AC'
        + "0" * 32
        + '"\nsms_from = "+15550001111"\nauth_token = "x"\n'
    )
    result = run("config", "show")
    assert result.exit_code == 1
    assert "twilio.auth_token is a secret: set NURTURE_TWILIO__AUTH_TOKEN" in result.output


def test_a_reply_ends_the_enrollments_whose_sequence_stops_on_reply(project: Path, store):
    later = step("Later", delay_days=1)
    apply(
        store, project,
        sequence("Scripted", step("Hi"), later, stopOnReply=True),  # the seed's camelCase
        sequence("Steady", step("Hi"), later),
    )  # fmt: skip
    scripted = enroll(store, "Scripted", name="Ana Ruiz", phone="+12025550100")
    steady = enroll(store, "Steady", name="Bo Li", phone="+12025550101")
    assert drain(store, T0) == 2
    reply = T0 + timedelta(hours=1)
    with store.session(immediate=True) as session:
        ana = consent.inbound_from(session, "+12025550100", "Sounds good, call me?", reply)
        bo = consent.inbound_from(session, "whatsapp:+12025550101", "thanks", reply, "whatsapp")
    assert (ana.stopped, bo.stopped) == ([scripted], [])
    assert drain(store, T0 + timedelta(days=2)) == 1  # only Bo's second text
    assert [row.step_id for row in executions(store, scripted)] == ["hi"]
    assert [row.step_id for row in executions(store, steady)] == ["hi", "later"]
    stopped = enrollment(store, scripted)
    assert (stopped.status, stopped.exit_reason, stopped.finished_at.replace(tzinfo=UTC)) == (
        "stopped", "the lead replied", reply,
    )  # fmt: skip
    assert enrollment(store, steady).status == "completed"


def test_leads_inbound_says_which_enrollments_a_reply_stopped(run_store, project: Path):
    write(project, "texts.yaml", sequence("Texts", step("Hi"), stop_on_reply=True, funnels=["Web"]))
    assert run_store("apply", "--yes").exit_code == 0
    assert run_store("leads", "add", "--funnel", "web", "--name", "Ana Ruiz").exit_code == 0
    result = run_store("leads", "inbound", "1", "--text", "who is this?")
    assert result.exit_code == 0, result.output
    assert "; stopped 1 enrollment (stop_on_reply)." in result.output
    [row] = json.loads(run_store("enrollments", "list", "--json").stdout)
    assert row["status"] == "stopped"
