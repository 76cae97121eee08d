"""SMS and WhatsApp through the Twilio SDK, against a local server speaking Twilio's REST API."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from builders import sequence, step
from enrolling import T0, apply, enroll, enrollment, executions, lead_of
from servers import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    INVALID_NUMBER,
    UNSUBSCRIBED,
    FakeTwilio,
    Reply,
    error,
)

from nurture.channels import OutgoingMessage, PermanentFailure, TemporaryFailure, channels_for
from nurture.channels.config import Providers, TwilioConfig
from nurture.channels.twilio import TwilioChannel
from nurture.engine.dispatch import EngineConfig, run_due
from nurture.leads import consent
from nurture.store.tables import Lead

SENDER = "+15550001111"
TEMPLATE = {"content_sid": "HX" + "a" * 32, "variables": {"1": "{{ lead.first_name }}"}}


@pytest.fixture
def twilio():
    fake = FakeTwilio()
    with fake.serving() as url:
        fake.url = url
        yield fake


def config(url: str, **options) -> TwilioConfig:
    values = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_url": url}
    values |= {"sms_from": SENDER, "whatsapp_from": SENDER, "timeout": 5}
    return TwilioConfig(**values | options)


def live(url: str, **options):
    return channels_for("live", providers=Providers(twilio=config(url, **options)))


def sms(to: str = "+15555550100") -> OutgoingMessage:
    return OutgoingMessage(channel="sms", recipient=to, body="Hi Sam", key="1:hi:1")


def test_an_sms_step_is_sent_and_its_message_sid_kept(store, project, twilio):
    apply(store, project, sequence("Texts", step("Hello")))
    enrollment_id = enroll(store, "Texts")
    assert run_due(store, T0, EngineConfig(worker="w"), live(twilio.url)) == 1
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form == {"To": "+15555550100", "From": SENDER, "Body": "Hi Sam, Hello"}
    [execution] = executions(store, enrollment_id)
    assert execution.status == "sent"
    assert execution.provider_id.startswith("SM") and len(execution.provider_id) == 34


def whatsapp_sequence(template: dict | None) -> dict:
    config = {"message": "Hi {{ lead.first_name }}, free text"}
    config |= {"template": template} if template else {}
    hello = {"name": "Hello", "action_type": "send_whatsapp_message", "action_config": config}
    return sequence("Chat", hello)


@pytest.mark.parametrize(
    ("wrote", "template", "sent"),
    [
        (timedelta(hours=2), TEMPLATE, {"Body": "Hi Sam, free text"}),
        (timedelta(hours=25), TEMPLATE, {"ContentSid": TEMPLATE["content_sid"],
                                         "ContentVariables": json.dumps({"1": "Sam"})}),
        (None, TEMPLATE, {"ContentSid": TEMPLATE["content_sid"],
                          "ContentVariables": json.dumps({"1": "Sam"})}),
    ],
)  # fmt: skip
def test_whatsapp_sends_free_text_inside_24_hours_else_the_template(
    store, project, twilio, wrote, template, sent
):
    apply(store, project, whatsapp_sequence(template))
    last = T0 - wrote if wrote else None
    enroll(store, "Chat", last_inbound_at=last)
    assert run_due(store, T0, EngineConfig(worker="w"), live(twilio.url)) == 1
    expected = {"To": "whatsapp:+15555550100", "From": f"whatsapp:{SENDER}"} | sent
    assert twilio.sent() == [expected]


def test_free_text_whatsapp_outside_the_window_fails_without_a_send(store, project, twilio):
    apply(store, project, whatsapp_sequence(None))
    enrollment_id = enroll(store, "Chat", last_inbound_at=T0 - timedelta(days=3))
    run_due(store, T0, EngineConfig(worker="w"), live(twilio.url))
    [execution] = executions(store, enrollment_id)
    assert execution.status == "failed" and twilio.requests == []
    assert execution.error == (
        "WhatsApp free text outside the 24-hour window (the lead last message 2025-02-28 09:00 "
        "UTC) and the step has no template fallback"
    )


def test_a_429_is_retried_no_sooner_than_retry_after(store, project, twilio):
    apply(store, project, sequence("Texts", step("Hello"), retry_delay="1m"))
    enrollment_id = enroll(store, "Texts")
    twilio.script.append(error(429, 20429, "Too Many Requests", **{"Retry-After": "600"}))
    run_due(store, T0, EngineConfig(worker="w"), live(twilio.url))
    [execution] = executions(store, enrollment_id)
    assert execution.status == "retry" and execution.error == "Twilio 20429: Too Many Requests"
    assert enrollment(store, enrollment_id).next_run_at == T0 + timedelta(seconds=600)

    later = T0 + timedelta(seconds=600)
    assert run_due(store, later, EngineConfig(worker="w"), live(twilio.url)) == 1
    assert executions(store, enrollment_id)[-1].status == "sent" and len(twilio.sent()) == 2


@pytest.mark.parametrize(
    ("reply", "failure", "text"),
    [
        (error(500, 20500, "Internal Server Error"), TemporaryFailure,
         "Twilio 20500: Internal Server Error"),
        (error(503, 20503, "Service Unavailable"), TemporaryFailure,
         "Twilio 20503: Service Unavailable"),
        (Reply(502, "<html>Bad Gateway</html>"), TemporaryFailure, "Twilio 502"),
    ],
)  # fmt: skip
def test_server_errors_are_temporary(twilio, reply, failure, text):
    twilio.script.append(reply)
    with pytest.raises(failure, match=text):
        TwilioChannel(config(twilio.url), "sms").send(sms())


@pytest.mark.parametrize(
    ("to", "text"),
    [
        (INVALID_NUMBER, f"Twilio 21211: The 'To' number {INVALID_NUMBER} is not a valid phone number."),
        (UNSUBSCRIBED, "Twilio 21610: Attempt to send to unsubscribed recipient"),
    ],
)  # fmt: skip
def test_invalid_and_unsubscribed_numbers_fail_permanently(twilio, to, text):
    with pytest.raises(PermanentFailure) as raised:
        TwilioChannel(config(twilio.url), "sms").send(sms(to))
    assert str(raised.value) == text


def test_a_recipient_twilio_reports_unsubscribed_is_opted_out_of_that_channel(
    store, project, twilio
):
    texts = sequence("Texts", step("Hello"), step("Again", delay_days=1))
    apply(store, project, texts, whatsapp_sequence(None))
    refused = enroll(store, "Texts", name="Sam", phone=UNSUBSCRIBED)
    other = enroll(store, "Texts", name="Kim", phone="+15555550100")
    assert run_due(store, T0, EngineConfig(worker="w"), live(twilio.url)) == 2
    [failed] = executions(store, refused)
    assert failed.status == "failed" and failed.error.startswith("Twilio 21610")
    assert lead_of(store, refused).opted_out == ["sms"]
    assert lead_of(store, other).opted_out == []
    with store.session() as session:
        [event] = consent.history(session, session.get(Lead, lead_of(store, refused).id))
        assert (event.channel, event.action, event.source) == ("sms", "opt_out", "provider")
    # the next SMS step is skipped, not sent (again refused)
    assert run_due(store, T0 + timedelta(days=1), EngineConfig(worker="w"), live(twilio.url)) == 2
    assert executions(store, refused)[-1].error == "lead opted out of sms"
    assert len(twilio.sent()) == 3


def test_a_wrong_token_fails_permanently(twilio):
    channel = TwilioChannel(config(twilio.url, auth_token="wrong"), "sms")
    with pytest.raises(PermanentFailure, match="Twilio 20003: Authentication Error"):
        channel.send(sms())


def test_a_messaging_service_replaces_the_from_number(twilio):
    service = "MG" + "b" * 32
    TwilioChannel(config(twilio.url, sms_from=None, messaging_service_sid=service), "sms").send(
        sms()
    )
    assert twilio.sent()[0]["MessagingServiceSid"] == service and "From" not in twilio.sent()[0]


def test_channels_check_fetches_the_account_without_sending(project: Path, run, twilio):
    (project / "nurture.toml").write_text(
        f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "{SENDER}"\napi_url = "{twilio.url}"\n'
        "[rate_limits]\nsms = 2\n"
    )
    (project / ".env").write_text(f"NURTURE_TWILIO__AUTH_TOKEN={AUTH_TOKEN}\n")
    result = run("channels", "check", "sms", "--json")
    assert result.exit_code == 0, result.output
    [check] = json.loads(result.stdout)
    assert check == {
        "channel": "sms", "configured": True, "ok": True,
        "detail": f"account Coach Kim (active), sms from {SENDER}; at most 2 a second",
    }  # fmt: skip
    assert [r.method for r in twilio.requests] == ["GET"] and twilio.sent() == []

    sent = run("channels", "send-test", "sms", "--to", "+44 7400 123456")
    assert sent.exit_code == 0, sent.output
    assert twilio.sent()[0]["To"] == "+447400123456"


def test_a_missing_auth_token_is_named(project: Path, run, twilio):
    (project / "nurture.toml").write_text(
        f'channel = "live"\n[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "{SENDER}"\n'
    )
    result = run("run", "--once")
    assert result.exit_code == 1
    assert "twilio needs its auth token: set NURTURE_TWILIO__AUTH_TOKEN in .env" in result.output


def test_channels_check_reminds_that_run_uses_them_only_when_live(project: Path, run, twilio):
    (project / "nurture.toml").write_text(
        f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "{SENDER}"\napi_url = "{twilio.url}"\n'
    )
    (project / ".env").write_text(f"NURTURE_TWILIO__AUTH_TOKEN={AUTH_TOKEN}\n")
    result = run("channels", "check", "sms")
    assert result.exit_code == 0
    assert 'note: channel = "outbox": `nurture run` uses these providers with --channel live' in (
        result.stderr
    )
