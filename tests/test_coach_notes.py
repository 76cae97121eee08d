"""The coach in the loop (issue 16): a lead's reply reaches the coach through the notification
channel, urgent notifications say so, and the coach's working hours hold the others, against
real local servers (an HTTP receiver for the webhook and Slack, aiosmtpd for email)."""

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from builders import sequence, step, write
from servers import AUTH_TOKEN, Mailbox, Recorder, smtp_server
from serving import serving
from sqlalchemy import select
from test_api_twilio import ACCOUNT_SID, INBOUND, signed

from nurture.store.db import open_store
from nurture.store.tables import Notification

HOOK = "/services/T0001/B0001/hook-secret-path"
PHONE = "+12025550100"
SATURDAY, MONDAY = "2026-11-28T11:00:00+00:00", "2026-11-30T08:00:00+00:00"  # Monday 09:00 Madrid
NOTE = {"name": "Tell the coach", "action_type": "send_notification",
        "action_config": {"message": "{{ lead.name }} joined"}}  # fmt: skip
URGENT = {"name": "Call now", "action_type": "send_notification",
          "action_config": {"message": "Call {{ lead.name }} now", "urgent": True}}  # fmt: skip


@pytest.fixture
def receiver():
    recorder = Recorder()
    with recorder.serving() as url:
        recorder.url = url
        yield recorder


def configure(project: Path, text: str) -> None:
    toml = project / "nurture.toml"
    toml.write_text(toml.read_text() + text)


def posted(receiver: Recorder) -> list[dict]:
    return [request.json() for request in receiver.requests]


@pytest.fixture
def coach(run_store, project, receiver):
    """Welcome (stops on reply) on `website`; notifications to a signed webhook; Sam enrolled."""
    configure(
        project,
        f'[api]\npublic_url = "https://nurture.example.com"\n'
        f'[notifications]\nwebhook_url = "{receiver.url}/hooks/nurture"\n',
    )
    welcome = sequence("Welcome", step("Hi"), step("Again", delay_days=2), funnels=["Website"],
                       stop_on_reply=True)  # fmt: skip
    write(project, "welcome.yaml", welcome)
    assert run_store("apply", "--yes").exit_code == 0
    added = run_store("leads", "add", "-f", "website", "--name", "Sam Carter",
                      "--email", "sam@example.com", "--phone", PHONE)  # fmt: skip
    assert added.exit_code == 0, added.output
    return run_store


def test_a_reply_reaches_the_coach_with_its_text_its_sequence_and_a_link(coach, receiver):
    said = coach("leads", "inbound", "sam@example.com", "-c", "sms", "--text", "Can we talk?")
    assert said.exit_code == 0, said.output
    assert coach("run", "--once", "--channel", "live").exit_code == 0
    [note] = [p for p in posted(receiver) if p["subject"]]
    assert note["subject"] == "Sam Carter replied (sms)"
    assert note["message"].startswith(
        f"Sam Carter (sam@example.com, {PHONE}) replied by sms: “Can we talk?”"
    )
    assert (
        "This reply stopped Welcome (stop_on_reply): the coach answers in person."
        in (note["message"])
    )
    assert note["link"] == "https://nurture.example.com/leads/1" and note["urgent"] is False
    [reply] = json.loads(coach("leads", "show", "1", "--json").stdout)["replies"]
    assert (reply["text"], reply["channel"], reply["stopped"]) == (
        "Can we talk?",
        "sms",
        ["Welcome"],
    )
    assert "Can we talk?" in coach("leads", "show", "1").stdout
    coach("run", "--once", "--channel", "live")
    assert len([p for p in posted(receiver) if p["subject"]]) == 1  # never twice


def test_a_reply_by_the_twilio_webhook_mentions_the_channel_when_replies_are_urgent(
    run_store, project, store_url, receiver, monkeypatch
):
    configure(
        project,
        f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "+15550001111"\n'
        "[notifications]\nurgent_replies = true\n",
    )
    monkeypatch.setenv("NURTURE_TWILIO__AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("NURTURE_NOTIFICATIONS__SLACK_WEBHOOK_URL", receiver.url + HOOK)
    write(project, "texts.yaml", sequence("Texts", step("Hello"), funnels=["Website"]))
    run_store("apply", "--yes")
    run_store("leads", "add", "-f", "website", "--name", "Sam Carter", "--phone", PHONE)
    with serving(project, store_url) as client:
        form = {"MessageSid": "SMr1", "From": PHONE, "Body": "Is Tuesday ok?"}
        assert signed(client, INBOUND, form).status_code == 200
    assert run_store("run", "--once", "--channel", "live").exit_code == 0
    texts = [request.json()["text"] for request in receiver.requests if request.path == HOOK]
    [reply] = [text for text in texts if "replied" in text]
    assert reply.startswith("<!channel> *Sam Carter replied (sms)*\n")
    assert "“Is Tuesday ok?”" in reply and "Still running: Texts." in reply


def test_an_urgent_notification_step_is_mailed_with_high_importance(
    run_store, project, monkeypatch
):
    monkeypatch.setenv("NURTURE_UNSUBSCRIBE__SECRET", "unsubscribe-secret")
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        configure(
            project,
            f'[email]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            'from_address = "nurture@example.com"\n'
            '[notifications]\nemail_to = "coach@example.com"\n',
        )
        write(project, "alerts.yaml", sequence("Alerts", NOTE, URGENT, funnels=["Website"]))
        run_store("apply", "--yes")
        run_store("leads", "add", "-f", "website", "--name", "Sam Carter")
        result = run_store("run", "--once", "--channel", "live")
        assert result.exit_code == 0, result.output
    plain, urgent = mailbox.messages
    assert plain["To"] == urgent["To"] == "coach@example.com"
    assert plain["Importance"] is None and plain["X-Priority"] is None
    assert (urgent["Importance"], urgent["X-Priority"]) == ("high", "1 (Highest)")
    assert "Call Sam Carter now" in urgent.get_body(("plain",)).get_content()


def notes(store_url: str) -> list[tuple[str, str, datetime | None]]:
    with open_store(store_url) as store, store.begin() as connection:
        rows = connection.execute(
            select(Notification.kind, Notification.status, Notification.deliver_at).order_by(
                Notification.id
            )
        )
        return [tuple(row) for row in rows]


def test_outside_working_hours_notes_wait_for_monday_and_urgent_ones_do_not(
    run_store, project, store_url, receiver
):
    configure(
        project,
        f'[notifications]\nwebhook_url = "{receiver.url}"\n'
        '[coach.working_hours]\nstart = "09:00"\nend = "18:00"\ntimezone = "Europe/Madrid"\n',
    )
    write(project, "alerts.yaml", sequence("Alerts", NOTE, URGENT, funnels=["Website"]))
    run_store("apply", "--yes")
    add = run_store("leads", "add", "-f", "website", "--name", "Sam Carter",
                    "--email", "sam@example.com", "--at", SATURDAY)  # fmt: skip
    assert add.exit_code == 0, add.output
    assert run_store("run", "--once", "--now", SATURDAY, "--channel", "live").exit_code == 0
    run_store("leads", "inbound", "sam@example.com", "--text", "hi", "--at", SATURDAY)
    assert run_store("run", "--once", "--now", SATURDAY, "--channel", "live").exit_code == 0
    [urgent] = posted(receiver)  # Saturday: the urgent step only
    assert urgent["message"] == "Call Sam Carter now" and urgent["urgent"] is True
    monday = datetime.fromisoformat(MONDAY)
    assert notes(store_url) == [
        ("step", "pending", monday), ("step", "sent", None), ("reply", "pending", monday),
    ]  # fmt: skip
    executions = json.loads(run_store("leads", "show", "1", "--json").stdout)["executions"]
    assert [e["status"] for e in executions] == ["done", "sent"]  # the held step went on
    assert run_store("run", "--once", "--now", MONDAY, "--channel", "live").exit_code == 0
    assert run_store("run", "--once", "--now", MONDAY, "--channel", "live").exit_code == 0
    held, reply = posted(receiver)[1:]
    assert held["message"] == "Sam Carter joined" and held["urgent"] is False
    assert reply["subject"] == "Sam Carter replied (whatsapp)"
    assert [status for _, status, _ in notes(store_url)] == ["sent"] * 3


def test_a_running_daemon_tells_the_coach_of_a_reply_within_a_poll(
    coach, project, store_url, receiver
):
    command = [sys.executable, "-m", "nurture", "--database-url", store_url, "run",
               "--channel", "live", "--poll", "0.2"]  # fmt: skip
    daemon = subprocess.Popen(command, cwd=project, stderr=subprocess.PIPE, text=True)
    try:
        coach("leads", "inbound", "sam@example.com", "--text", "Yes please")
        deadline = time.monotonic() + 60
        while not any("Yes please" in p["message"] for p in posted(receiver)):
            assert time.monotonic() < deadline, "the coach heard nothing"
            time.sleep(0.1)
    finally:
        daemon.terminate()
        daemon.communicate(timeout=30)
    assert [status for kind, status, _ in notes(store_url) if kind == "reply"] == ["sent"]


def test_an_inbound_event_over_the_api_is_kept_and_told(coach, project, store_url, receiver):
    from serving import serving, token

    writer = token(coach, "crm", "write")
    with serving(project, store_url) as api:
        event = {"type": "inbound", "value": "Booked!", "channel": "sms"}
        lead = api.post("/api/leads/sam@example.com/events", json=event, headers=writer).json()
        assert [(r["text"], r["stopped"]) for r in lead["replies"]] == [("Booked!", ["Welcome"])]
    coach("run", "--once", "--channel", "live")
    assert any("“Booked!”" in p["message"] for p in posted(receiver))
