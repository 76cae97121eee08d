"""Email over SMTP against a real server (aiosmtpd): what a lead receives, TLS, login, errors."""

import re
from pathlib import Path

import pytest
from builders import sequence, step
from enrolling import T0, apply, enroll, executions, lead_of
from servers import Mailbox, local_tls, smtp_server

from nurture.channels import OutgoingMessage, PermanentFailure, TemporaryFailure, channels_for
from nurture.channels.config import Providers, SmtpConfig, UnsubscribeConfig
from nurture.channels.smtp import SmtpChannel
from nurture.channels.unsubscribe import read_token
from nurture.engine.dispatch import EngineConfig, run_due

SECRET = "unsubscribe-secret"
PAGE = "https://coach.example.com/unsubscribe/{token}"

WELCOME = {
    "subject": "Welcome, {{ lead.first_name }}",
    "body": "Hi {{ lead.name }},\nglad you're here.\nNo more mail: {{ unsubscribe_url }}",
    "html": '<p>Hi {{ lead.name }}</p><p><a href="{{ unsubscribe_url }}">No more mail</a></p>',
    "reply_to": "kim@example.com",
}


def smtp(port: int, **options) -> SmtpConfig:
    base = {"host": "127.0.0.1", "port": port, "security": "none", "timeout": 5}
    return SmtpConfig(
        **base | {"from_address": "coach@example.com", "from_name": "Coach Kim"} | options
    )


def unsubscribe(url: str | None = PAGE) -> UnsubscribeConfig:
    return UnsubscribeConfig(secret=SECRET, url=url)


def message(**fields) -> OutgoingMessage:
    values = {"channel": "email", "recipient": "sam@example.com", "subject": "Hi", "key": "7:hi:1"}
    return OutgoingMessage(**values | {"body": "Hello Sam", "lead_id": 7} | fields)


def test_a_lead_gets_a_multipart_email_with_a_working_unsubscribe_link(
    store, project, run, store_url
):
    steps = [step("Welcome", "send_email", action_config=WELCOME), step("Later", "send_email")]
    steps[1]["delay_days"] = 1
    apply(store, project, sequence("Mail", *steps))
    enrollment_id = enroll(store, "Mail", name="Sam <Carter> & Co")
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        providers = Providers(email=smtp(port), unsubscribe=unsubscribe())
        assert (
            run_due(store, T0, EngineConfig(worker="w"), channels_for("live", store, providers))
            == 1
        )

        [mail] = mailbox.messages
        assert mail["From"] == "Coach Kim <coach@example.com>" and mail["To"] == "sam@example.com"
        assert mail["Subject"] == "Welcome, Sam" and mail["Reply-To"] == "kim@example.com"
        assert mail["Message-ID"] == f"<nurture.{enrollment_id}.welcome@example.com>"
        assert mail.get_content_type() == "multipart/alternative"
        text = mail.get_body(("plain",)).get_content()
        markup = mail.get_body(("html",)).get_content()
        assert "Hi Sam <Carter> & Co,\nglad you're here." in text  # text: not escaped
        assert "<p>Hi Sam &lt;Carter&gt; &amp; Co</p>" in markup  # HTML: escaped
        link = re.search(r"https://coach\.example\.com/unsubscribe/(\S+)", text)
        assert link and f'href="{link.group(0)}"' in markup
        assert f"<{link.group(0)}>" in mail["List-Unsubscribe"]
        assert mail["List-Unsubscribe"].startswith("<mailto:coach@example.com?subject=unsubscribe")
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert b"\nList-Unsubscribe: <mailto:" in mailbox.envelopes[0].content.replace(b"\r", b"")
        lead = lead_of(store, enrollment_id)
        assert read_token(SECRET, link.group(1)) == (lead.id, "email")
        [sent] = executions(store, enrollment_id)
        assert (sent.status, sent.provider_id) == ("sent", mail["Message-ID"])

        # The lead follows the link; the coach's unsubscribe page (or the CLI) applies it.
        (project / ".env").write_text(f"NURTURE_UNSUBSCRIBE__SECRET={SECRET}\n")
        result = run("--database-url", store_url, "unsubscribe", link.group(1))
        assert result.exit_code == 0, result.output
        assert "unsubscribed from email" in result.output
        assert lead_of(store, enrollment_id).opted_out == ["email"]

        next_day = T0.replace(day=T0.day + 1)
        assert run_due(
            store, next_day, EngineConfig(worker="w"), channels_for("live", store, providers)
        )
        assert len(mailbox.messages) == 1  # never sent
    later = executions(store, enrollment_id)[-1]
    assert (later.step_id, later.status, later.error) == (
        "later",
        "skipped",
        "lead opted out of email",
    )


def test_a_forged_or_cut_token_is_refused(project, run):
    (project / ".env").write_text(f"NURTURE_UNSUBSCRIBE__SECRET={SECRET}\n")
    result = run("unsubscribe", "MTplbWFpbA.AAAAAAAAAAAAAAAAAAAAAA")
    assert result.exit_code == 1
    assert "signature does not match" in result.output
    assert "not an unsubscribe token" in run("unsubscribe", "%%%").output


def test_a_text_only_email_gets_an_html_part_and_a_mailto_unsubscribe(tmp_path):
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        SmtpChannel(smtp(port), unsubscribe(url=None)).send(message(body="Hi <Sam>\n\nBye"))
    [mail] = mailbox.messages
    text = mail.get_body(("plain",)).get_content()
    assert text.startswith("Hi <Sam>\n\nBye\n\n--\nUnsubscribe: mailto:coach@example.com?subject=")
    markup = mail.get_body(("html",)).get_content()
    assert "<p>Hi &lt;Sam&gt;</p><p>Bye</p>" in markup and ">Unsubscribe</a>" in markup
    assert "List-Unsubscribe-Post" not in mail


def test_starttls_and_login(tmp_path):
    tls, mailbox = local_tls(tmp_path), Mailbox()
    users = {"coach": "s3cret"}
    with smtp_server(mailbox, tls=tls, users=users) as port:
        login = {"security": "starttls", "username": "coach", "ca_file": tls.ca_file}
        channel = SmtpChannel(smtp(port, **login, password="s3cret"), unsubscribe())
        result = channel.send(message())
        assert "logged in as coach" in channel.check()

        with pytest.raises(PermanentFailure, match="SMTP 535"):
            SmtpChannel(smtp(port, **login, password="nope"), unsubscribe()).send(message())
        untrusted = smtp(port, **login | {"ca_file": None}, password="s3cret")
        with pytest.raises(PermanentFailure, match="CERTIFICATE_VERIFY_FAILED"):
            SmtpChannel(untrusted, unsubscribe()).send(message())  # our CA is not trusted
    assert mailbox.logins == ["coach", "coach"] and len(mailbox.messages) == 1
    assert mailbox.messages[0]["Message-ID"] == result.provider_id


def test_implicit_tls(tmp_path):
    tls, mailbox = local_tls(tmp_path), Mailbox()
    with smtp_server(mailbox, tls=tls, implicit=True) as port:
        config = smtp(port, security="tls", ca_file=tls.ca_file)
        SmtpChannel(config, unsubscribe()).send(message())
    assert mailbox.messages[0]["Subject"] == "Hi"


@pytest.mark.parametrize(
    ("reply", "failure"),
    [("450 4.2.1 Mailbox busy, try later", TemporaryFailure),
     ("550 5.1.1 No such user here", PermanentFailure)],
)  # fmt: skip
def test_smtp_4xx_is_temporary_and_5xx_permanent(reply, failure):
    mailbox = Mailbox(reply=reply)
    with smtp_server(mailbox) as port, pytest.raises(failure) as raised:
        SmtpChannel(smtp(port), unsubscribe()).send(message())
    assert str(raised.value) == "SMTP " + reply
    assert mailbox.messages == []


def test_a_server_that_is_down_is_a_temporary_failure():
    with smtp_server(Mailbox()) as port:
        pass
    with pytest.raises(TemporaryFailure, match="ConnectionRefusedError"):
        SmtpChannel(smtp(port), unsubscribe()).send(message())


def test_channels_check_and_send_test_through_a_real_relay(project: Path, run, tmp_path):
    tls, mailbox = local_tls(tmp_path), Mailbox()
    with smtp_server(mailbox, tls=tls, users={"coach": "s3cret"}) as port:
        (project / "nurture.toml").write_text(
            'timezone = "UTC"\n[email]\nhost = "127.0.0.1"\n'
            f'port = {port}\nusername = "coach"\nfrom_address = "coach@example.com"\n'
            f'ca_file = "{tls.ca_file}"\n'
        )
        (project / ".env").write_text(
            f"NURTURE_EMAIL__PASSWORD=s3cret\nNURTURE_UNSUBSCRIBE__SECRET={SECRET}\n"
        )
        checked = run("channels", "check", "email")
        assert checked.exit_code == 0, checked.output
        assert f"127.0.0.1:{port} (starttls), logged in as coach" in checked.output
        assert mailbox.messages == []  # checking sends nothing

        sent = run("channels", "send-test", "email", "--to", "me@example.com")
        assert sent.exit_code == 0, sent.output
        assert "Sent a test email message to me@example.com" in sent.output
    [mail] = mailbox.messages
    assert mail["To"] == "me@example.com" and mail["Subject"].startswith("nurture test message")


def test_channels_check_says_what_is_missing(project: Path, run):
    (project / "nurture.toml").write_text(
        '[email]\nhost = "127.0.0.1"\nfrom_address = "coach@example.com"\n'
    )
    result = run("channels", "check")
    assert result.exit_code == 1
    assert "NURTURE_UNSUBSCRIBE__SECRET" in result.output
    assert "not configured (add [twilio] with sms_from" in result.output


@pytest.mark.parametrize(
    ("args", "said"),
    [(("email",), "--to: give the email address to send the test email message to"),
     (("notification", "--to", "x"), "no notification provider is configured (notifications"),
     (("whatsapp", "--to", "+447400123456", "--template", "bogus"), "--template 'bogus': an")],
)  # fmt: skip
def test_send_test_refuses_what_cannot_be_a_real_test(project: Path, run, args, said):
    (project / "nurture.toml").write_text(
        '[email]\nhost = "127.0.0.1"\nfrom_address = "coach@example.com"\n'
        '[twilio]\naccount_sid = "AC' + "0" * 32 + '"\nwhatsapp_from = "+15550001111"\n'
    )
    result = run("channels", "send-test", *args)
    assert result.exit_code == 1 and f"error: {said}" in result.output


def test_notifications_can_go_to_the_coach_by_email_without_an_unsubscribe_link():
    from nurture.channels.config import NotificationsConfig

    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        notify = NotificationsConfig(email_to="kim@example.com")
        providers = Providers(email=smtp(port), notifications=notify, unsubscribe=unsubscribe())
        note = OutgoingMessage(
            channel="notification", recipient="coach", body="Sam is hot\nCall today", key="2:n:1",
            lead_id=3,
        )  # fmt: skip
        channels_for("live", providers=providers)["notification"].send(note)
    [mail] = mailbox.messages
    assert mail["To"] == "kim@example.com" and mail["Subject"] == "nurture: Sam is hot"
    assert "List-Unsubscribe" not in mail
    assert mail.get_body(("plain",)).get_content() == "Sam is hot\nCall today\n"


def test_a_kind_without_a_provider_fails_saying_what_to_configure():
    channels = channels_for("live", providers=Providers())
    with pytest.raises(PermanentFailure, match=r"no email channel configured: add \[email\]"):
        channels["email"].send(message())
    note = OutgoingMessage(channel="notification", recipient="coach", body="hi", key="1:n:1")
    assert channels["notification"].send(note).provider_id == "stored-1:n:1"  # the store has it


def test_a_sender_keeps_its_connection_for_a_burst(tmp_path):
    tls, mailbox = local_tls(tmp_path), Mailbox()
    with smtp_server(mailbox, tls=tls, users={"coach": "s3cret"}) as port:
        login = {"security": "starttls", "username": "coach", "ca_file": tls.ca_file}
        channel = SmtpChannel(
            smtp(port, **login, password="s3cret", messages_per_connection=3), unsubscribe()
        )
        results = [channel.send(message(key=f"7:hi:{n}")) for n in range(1, 8)]
    assert channel.opened == 3 and mailbox.logins == ["coach"] * 3  # 3 + 3 + 1 messages
    assert [m["Message-ID"] for m in mailbox.messages] == [r.provider_id for r in results]


def test_a_connection_the_relay_dropped_is_replaced_before_a_message_goes():
    first, second = Mailbox(), Mailbox()
    with smtp_server(first) as port:
        channel = SmtpChannel(smtp(port), unsubscribe())
        channel.send(message(key="7:hi:1"))
    with smtp_server(second, port=port):  # the relay restarted: the kept connection is dead
        channel.send(message(key="7:hi:2"))
        assert channel.opened == 2
        second.reply = "550 5.1.1 No such user here"
        with pytest.raises(PermanentFailure):
            channel.send(message(key="7:hi:3"))
        second.reply = None
        channel.send(message(key="7:hi:4"))  # a failed send closed its connection: a new one
        assert channel.opened == 3
    assert [len(first.messages), len(second.messages)] == [1, 2]
