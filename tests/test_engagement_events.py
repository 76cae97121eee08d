"""Engagement events from providers: Twilio's signed status callbacks on a real `nurture serve`,
and bounce reports (RFC 3464) of emails sent through a real SMTP server."""

import json
import mailbox
import urllib.request
from urllib.parse import urlencode

from builders import sequence, step
from enrolling import T0, apply, enroll, executions, lead_of
from servers import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Mailbox, smtp_server
from serving import live
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from nurture.channels import channels_for
from nurture.channels.config import Providers, SmtpConfig, UnsubscribeConfig
from nurture.engine.dispatch import EngineConfig, run_due
from nurture.settings import load_settings
from nurture.store.tables import EngagementEvent

PHONE = "+12025550100"


def kinds(store) -> list[tuple[str, str | None, int | None]]:
    table = EngagementEvent.__table__
    with store.begin() as connection:
        rows = connection.execute(select(table).order_by(table.c.id))
        return [(row.kind, row.step_id, row.execution_id) for row in rows]


def callback(base: str, form: dict[str, str]) -> int:
    """A status callback as Twilio posts it: a form signed for the URL it calls."""
    url = base + "/webhooks/twilio/status"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    request = urllib.request.Request(
        url,
        data=urlencode(form).encode(),
        headers={"X-Twilio-Signature": signature},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def test_twilio_statuses_become_delivered_and_read_events_once(project, store, store_url):
    twilio = f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "+15550001111"\n'
    (project / "nurture.toml").write_text(f'timezone = "UTC"\n{twilio}')
    (project / ".env").write_text(f"NURTURE_TWILIO__AUTH_TOKEN={AUTH_TOKEN}\n")
    apply(store, project, sequence("Texts", step("Hello")))
    first, second = enroll(store, "Texts", phone=PHONE), enroll(store, "Texts", name="Kim")
    fake = FakeTwilio()
    with fake.serving() as url:
        settings = load_settings(project, database_url=store_url)
        settings.twilio = settings.twilio.model_copy(update={"api_url": url})
        channels = channels_for("live", store, settings.providers)
        assert run_due(store, T0, EngineConfig(worker="w"), channels) == 2
    [hello], [other] = executions(store, first), executions(store, second)
    with live(project, store_url) as base:
        for status in ("sent", "delivered", "read", "read", "delivered"):
            assert callback(base, {"MessageSid": hello.provider_id, "MessageStatus": status}) == 204
        form = {"MessageSid": other.provider_id, "MessageStatus": "undelivered"}
        assert callback(base, form | {"ErrorCode": "30003"}) == 204
    assert kinds(store) == [
        ("delivered", "hello", hello.id),
        ("read", "hello", hello.id),
        ("bounced", "hello", other.id),
    ]


DSN = """\
From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
To: coach@example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"

--B0UND
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.com. I'm sorry to have to inform you that
your message could not be delivered to one or more recipients.

--B0UND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Arrival-Date: Mon,  3 Mar 2025 09:00:02 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mail.example.org
Diagnostic-Code: smtp; {diagnostic}

--B0UND
Content-Type: {returned}

From: Coach <coach@example.com>
To: {recipient}
Subject: Welcome
Message-ID: {original_id}

--B0UND--
"""


def dsn(original_id: str, recipient: str, status: str, diagnostic: str, headers: bool = True):
    """A delivery status notification as Postfix writes one."""
    action = "failed" if status.startswith("5") else "delayed"
    returned = "text/rfc822-headers" if headers else "text/plain"
    fields = {"recipient": recipient, "action": action, "status": status, "returned": returned}
    return DSN.format(original_id=original_id, diagnostic=diagnostic, **fields).encode()


def test_bounce_reports_are_recorded_once_and_a_hard_bounce_stops_email(
    project, store, store_url, run_store, tmp_path
):
    apply(store, project, sequence("Mail", step("Welcome", "send_email")))
    ana = enroll(store, "Mail", name="Ana", email="ana@example.com")
    ben = enroll(store, "Mail", name="Ben", email="ben@example.com")
    with smtp_server(Mailbox()) as port:
        smtp = SmtpConfig(
            host="127.0.0.1", port=port, security="none", from_address="coach@example.com"
        )
        unsubscribe = UnsubscribeConfig(secret="s")
        channels = channels_for("live", store, Providers(email=smtp, unsubscribe=unsubscribe))
        assert run_due(store, T0, EngineConfig(worker="w"), channels) == 2
    [to_ana], [to_ben] = executions(store, ana), executions(store, ben)
    assert to_ana.provider_id == f"<nurture.{ana}.welcome@example.com>"
    hard = dsn(
        to_ana.provider_id, "ana@example.com", "5.1.1", "550 5.1.1 <ana@example.com>: User unknown"
    )
    soft = dsn(
        "<someone-else@example.com>", "ben@example.com", "5.2.2", "552 mailbox full", headers=False
    )
    delayed = dsn(to_ben.provider_id, "ben@example.com", "4.4.1", "connection timed out")
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    for message in (hard, soft, delayed, b"From: a friend\nSubject: hello\n\nnot a bounce\n"):
        box.add(message)
    box.close()
    result = run_store("events", "bounces", str(tmp_path / "bounces.mbox"))
    assert result.exit_code == 0, result.output
    assert "recorded 2 bounces (2 hard: opted out of email)" in result.stderr
    assert "skipped hello: not a delivery status notification" in result.stderr
    assert [k[0] for k in kinds(store)] == ["bounced", "bounced"]
    assert {k[2] for k in kinds(store)} == {to_ana.id, to_ben.id}  # Ben's found by his address
    again = run_store("events", "bounces", "-", input=hard.decode())
    assert again.exit_code == 0 and "1 bounce recorded before" in again.stderr
    shown = json.loads(run_store("leads", "show", str(lead_of(store, ana).id), "--json").stdout)
    assert shown["opted_out"] == ["email"]
    [logged] = [e for e in json.loads(run_store("logs", "--json").stdout) if e["id"] == to_ana.id]
    assert logged["delivery_status"] == "undelivered"
    assert executions(store, ana)[0].delivery_error.startswith("bounced 5.1.1: 550 5.1.1")


def test_a_maildir_of_bounces_and_a_missing_file(run_store, tmp_path, project):
    folder = mailbox.Maildir(tmp_path / "Bounces")
    folder.add(dsn("<nobody@example.com>", "who@example.com", "5.1.1", "unknown"))
    result = run_store("events", "bounces", str(tmp_path / "Bounces"))
    assert result.exit_code == 0, result.output
    assert "no email sent matches the bounce of <nobody@example.com>" in result.stderr
    missing = run_store("events", "bounces", str(tmp_path / "nope.mbox"))
    assert missing.exit_code == 1 and "nope.mbox: no such file or folder" in missing.stderr
