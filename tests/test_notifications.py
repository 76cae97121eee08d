"""Notifications to Slack (incoming webhook) and to a signed JSON webhook, against local servers."""

import hashlib
import hmac
import json

import pytest
from builders import sequence, write
from enrolling import T0, apply, enroll, executions
from servers import Recorder, Reply
from serving import serving, token

from nurture.channels import OutgoingMessage, PermanentFailure, TemporaryFailure, channels_for
from nurture.channels.config import NotificationsConfig, Providers
from nurture.channels.slack import SlackChannel
from nurture.channels.webhook import WebhookChannel
from nurture.engine.dispatch import EngineConfig, run_due
from nurture.store.tables import Notification

SECRET = "webhook-secret"
HOOK = "/services/T0001/B0001/hook-secret-path"  # an incoming webhook's path is its credential
NOTE = OutgoingMessage(
    channel="notification", recipient="coach", body="Sam is hot", key="3:alert:1", lead_id=9
)


@pytest.fixture
def receiver():
    recorder = Recorder()
    with recorder.serving() as url:
        recorder.url = url
        yield recorder


def test_a_notification_step_posts_a_signed_webhook(store, project, receiver):
    alert = {"name": "Alert", "action_type": "send_notification",
             "action_config": {"message": "{{ lead.name }} is hot", "urgent": True}}  # fmt: skip
    apply(store, project, sequence("Alerts", alert))
    enrollment_id = enroll(store, "Alerts")
    config = NotificationsConfig(webhook_url=receiver.url + "/hooks/nurture", webhook_secret=SECRET)
    channels = channels_for("live", providers=Providers(notifications=config))
    assert run_due(store, T0, EngineConfig(worker="w"), channels) == 1

    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/nurture")
    payload = request.json()
    assert payload["message"] == "Sam Carter is hot" and payload["event"] == "notification"
    assert request.headers["X-Nurture-Key"] == payload["key"] == f"{enrollment_id}:alert:1"
    timestamp = request.headers["X-Nurture-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert request.headers["X-Nurture-Signature"] == "sha256=" + expected.hexdigest()
    [execution] = executions(store, enrollment_id)
    assert execution.status == "sent"
    with store.begin() as connection:  # the coach's inbox in the store has it too
        assert (
            connection.execute(Notification.__table__.select()).one().message == payload["message"]
        )


@pytest.mark.parametrize(
    ("reply", "failure", "text"),
    [
        (Reply(429, "slow down", {"Retry-After": "30"}), TemporaryFailure, "webhook HTTP 429: slow down"),
        (Reply(503, "maintenance"), TemporaryFailure, "webhook HTTP 503: maintenance"),
        (Reply(410, "gone"), PermanentFailure, "webhook HTTP 410: gone"),
    ],
)  # fmt: skip
def test_webhook_errors_are_classified(receiver, reply, failure, text):
    receiver.script.append(reply)
    channel = WebhookChannel(NotificationsConfig(webhook_url=receiver.url, webhook_secret=SECRET))
    with pytest.raises(failure) as raised:
        channel.send(NOTE)
    assert str(raised.value) == text
    assert getattr(raised.value, "retry_after", None) == (30.0 if reply.status == 429 else None)


def test_a_webhook_that_hangs_is_a_temporary_failure(receiver):
    receiver.script.append(Reply(200, "ok", delay=1.0))
    config = NotificationsConfig(webhook_url=receiver.url, timeout=0.2)
    with pytest.raises(TemporaryFailure, match="timed out"):
        WebhookChannel(config).send(NOTE)


def test_slack_gets_the_message_as_text(receiver):
    slack = SlackChannel(NotificationsConfig(slack_webhook_url=receiver.url + HOOK))
    slack.send(NOTE)
    [request] = receiver.requests
    assert request.path == HOOK and request.json() == {"text": "Sam is hot"}


@pytest.mark.parametrize(
    ("reply", "failure"),
    [(Reply(429, "rate_limited", {"Retry-After": "5"}), TemporaryFailure),
     (Reply(500, "internal_error"), TemporaryFailure),
     (Reply(404, "no_service"), PermanentFailure),
     (Reply(403, "invalid_token"), PermanentFailure)],
)  # fmt: skip
def test_slack_errors_are_classified(receiver, reply, failure):
    receiver.script.append(reply)
    slack = SlackChannel(NotificationsConfig(slack_webhook_url=receiver.url + HOOK))
    with pytest.raises(failure, match=f"Slack HTTP {reply.status}: {reply.body}"):
        slack.send(NOTE)
    assert len(receiver.requests) == 1  # no retry behind the engine's back


def test_slack_check_posts_nothing_and_tells_a_dead_webhook(receiver):
    slack = SlackChannel(NotificationsConfig(slack_webhook_url=receiver.url + HOOK))
    receiver.script.append(Reply(400, "no_text"))
    assert slack.check() == f"the incoming webhook {receiver.url}/… is live"
    assert json.loads(receiver.requests[0].body) == {"text": ""}
    receiver.script.append(Reply(404, "no_service"))
    with pytest.raises(PermanentFailure, match="no_service"):
        slack.check()


def test_a_message_a_provider_refuses_for_good_alerts_the_coach(receiver):
    from servers import INVALID_NUMBER, FakeTwilio
    from test_twilio import config as twilio_config

    twilio = FakeTwilio()
    with twilio.serving() as api:
        providers = Providers(
            twilio=twilio_config(api), notifications=NotificationsConfig(webhook_url=receiver.url)
        )
        sms = channels_for("live", providers=providers)["sms"]
        text = OutgoingMessage(
            channel="sms",
            recipient=INVALID_NUMBER,
            body="hi",
            key="5:hello:1",
            lead_id=4,
            execution_id=12,
        )
        with pytest.raises(PermanentFailure, match="21211"):
            sms.send(text)
    [alert] = [request.json() for request in receiver.requests]
    assert alert["subject"] == "nurture: a sms message failed"
    assert alert["message"].startswith(f"sms to {INVALID_NUMBER} failed for good: Twilio 21211")
    assert alert["key"] == "alert.5:hello:1" and alert["lead_id"] == 4
    assert alert["execution_id"] == 12  # the failed step's


def test_webhook_check_sends_a_head_request_and_tells_a_missing_endpoint(receiver):
    channel = WebhookChannel(NotificationsConfig(webhook_url=receiver.url + "/hooks"))
    assert channel.check().endswith("answers HTTP 200; requests are NOT signed (set "
                                    "NURTURE_NOTIFICATIONS__WEBHOOK_SECRET)")  # fmt: skip
    receiver.script.append(Reply(405, "use POST"))
    assert channel.check().endswith("answers (webhook HTTP 405)")  # a HEAD has no body
    receiver.script.append(Reply(404, "nothing here"))
    with pytest.raises(PermanentFailure, match="HTTP 404"):
        channel.check()
    assert [r.method for r in receiver.requests] == ["HEAD", "HEAD", "HEAD"]


def test_a_lead_from_a_public_form_cannot_ping_the_whole_slack_channel(
    run_store, project, store_url, receiver, monkeypatch
):
    said = "New lead {{ lead.name }}: <https://crm.example.com/leads?email={{ lead.email }}&tab=1|open it>"
    alert = {
        "name": "Alert",
        "action_type": "send_notification",
        "action_config": {"message": said},
    }
    write(project, "alerts.yaml", sequence("Alerts", alert, funnels=["website"]))
    applied = run_store("apply", "--yes")
    assert applied.exit_code == 0, applied.output
    with (project / "nurture.toml").open("a") as toml:
        toml.write('channel = "live"\n')
    monkeypatch.setenv("NURTURE_NOTIFICATIONS__SLACK_WEBHOOK_URL", receiver.url + HOOK)
    form = {"funnel": "website", "name": "<!channel> Ana & <@U0001>", "email": "ana@example.com"}
    with serving(project, store_url) as api:
        answer = api.post("/api/leads", json=form, headers=token(run_store, "form", "ingest"))
    assert answer.status_code == 201, answer.text
    assert run_store("run", "--once").exit_code == 0

    [request] = receiver.requests
    assert request.json()["text"] == (
        "New lead &lt;!channel&gt; Ana &amp; &lt;@U0001&gt;: "
        "<https://crm.example.com/leads?email=ana@example.com&tab=1|open it>"  # the link works
    )
