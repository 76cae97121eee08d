"""A lead's answer by email (issue 16): the welcome email goes out through a real SMTP server
(aiosmtpd), the lead's reply is posted to a real `nurture serve` at /webhooks/email (or piped to
`nurture leads inbound --email-file -`), matched by its In-Reply-To, and the coach's note about
it arrives by email at the same server. Automatic answers are ignored, bounces go to the bounce
handling, a bad token is refused."""

import json
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import sequence, step, write
from servers import Mailbox, smtp_server
from serving import serve_process, serving
from test_engagement_events import dsn

from nurture.errors import NurtureError
from nurture.rules.email_replies import read_email, strip_quoted

SECRET = "inbound-secret-0123456789"
RAW = {"Content-Type": "message/rfc822"}


def reply(
    text: str,
    in_reply_to: str | None = None,
    sender: str = "Sam Carter <sam@example.com>",
    message_id: str = "<r1@mail.example.com>",
    headers: str = "",
) -> bytes:
    """An email as a mail client sends one back."""
    threading = f"In-Reply-To: {in_reply_to}\nReferences: {in_reply_to}\n" if in_reply_to else ""
    return (
        f"From: {sender}\nTo: Coach Kim <coach@example.com>\nSubject: Re: Welcome\n"
        f"Date: Thu, 03 Dec 2026 10:00:00 +0000\nMessage-ID: {message_id}\n{threading}{headers}"
        f"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{text}"
    ).encode()


ANSWER = (
    "Tuesday at 10 works for me.\nSee you then!\n\n-- \nSam Carter\nCarter & Co\n\n"
    "On Wed, Dec 2, 2026 at 9:00 AM Coach Kim <coach@example.com>\nwrote:\n> Hello Sam Carter\n"
)


@pytest.fixture
def mailed(run_store, project, monkeypatch) -> Iterator[Mailbox]:
    """Sam got the Welcome email (a sequence that stops on reply) through a local SMTP server;
    the coach's notes go by email to the same server, which stays up for the test."""
    monkeypatch.setenv("NURTURE_UNSUBSCRIBE__SECRET", "unsubscribe-secret")
    monkeypatch.setenv("NURTURE_INBOUND_EMAIL__SECRET", SECRET)
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        toml = project / "nurture.toml"
        toml.write_text(
            toml.read_text() + f'[email]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            'from_address = "coach@example.com"\n'
            '[notifications]\nemail_to = "kim@example.com"\n'
        )
        steps = step("Welcome", "send_email"), step("Again", "send_email", delay_days=2)
        welcome = sequence("Welcome", *steps, funnels=["Website"], stop_on_reply=True)
        write(project, "welcome.yaml", welcome)
        assert run_store("apply", "--yes").exit_code == 0
        added = run_store("leads", "add", "-f", "website", "--name", "Sam Carter",
                          "--email", "sam@example.com")  # fmt: skip
        assert added.exit_code == 0, added.output
        assert run_store("run", "--once", "--channel", "live").exit_code == 0
        assert [m["To"] for m in mailbox.messages] == ["sam@example.com"]
        yield mailbox


@pytest.fixture
def served(project, store_url) -> Iterator[str]:
    """`nurture serve` as a user starts it, on a free loopback port; its base URL."""
    with serve_process(project, store_url) as served:
        yield served.url
    assert "Traceback" not in served.log, served.log
    assert SECRET not in served.log  # the header's token is never logged


def post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url + "/webhooks/email", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def shown(run_store) -> dict:
    return json.loads(run_store("leads", "show", "1", "--json").stdout)


def test_a_reply_to_serve_is_matched_by_in_reply_to_and_reaches_the_coach_by_email(
    mailed, served, run_store
):
    welcome = mailed.messages[0]["Message-ID"]
    headers = RAW | {"X-Nurture-Token": SECRET}
    status, body = post(served, reply(ANSWER, welcome), headers)
    assert status == 200, body
    assert (body["outcome"], body["lead_id"], body["matched_by"], body["stopped"]) == (
        "reply",
        1,
        "in-reply-to",
        1,
    )
    assert run_store("run", "--once", "--channel", "live").exit_code == 0
    note = mailed.messages[1]
    assert (note["To"], note["Subject"]) == ("kim@example.com", "Sam Carter replied (email)")
    text = note.get_body(("plain",)).get_content()
    assert (
        "Sam Carter (sam@example.com) replied by email: “Tuesday at 10 works for me.\nSee you then!”"
        in text
    )
    assert "This reply stopped Welcome (stop_on_reply)" in text
    assert "Hello Sam Carter" not in text and "Carter & Co" not in text  # quote, signature cut
    lead = shown(run_store)
    assert [r["text"] for r in lead["replies"]] == ["Tuesday at 10 works for me.\nSee you then!"]
    [enrollment] = lead["enrollments"]
    assert enrollment["status"] == "stopped"
    [replied] = [e for e in lead["engagement"] if e["kind"] == "replied"]
    assert (replied["step_id"], replied["detail"]["channel"]) == ("welcome", "email")
    # the provider posts it again: answered, nothing new, the coach is told once
    assert post(served, reply(ANSWER, welcome), headers)[1]["outcome"] == "repeat"
    assert run_store("run", "--once", "--channel", "live").exit_code == 0
    assert len(mailed.messages) == 2
    assert len(shown(run_store)["replies"]) == 1


def test_an_out_of_office_answer_is_no_reply(mailed, served, run_store):
    welcome = mailed.messages[0]["Message-ID"]
    away = reply("I am out of the office until Monday.", welcome,
                 headers="Auto-Submitted: auto-replied\n")  # fmt: skip
    status, body = post(served, away, RAW | {"X-Nurture-Token": SECRET})
    assert (status, body["outcome"], body["lead_id"]) == (200, "auto", None)
    assert "Auto-Submitted: auto-replied" in body["detail"]
    assert run_store("run", "--once", "--channel", "live").exit_code == 0
    assert len(mailed.messages) == 1  # no note for the coach
    lead = shown(run_store)
    assert lead["replies"] == [] and lead["enrollments"][0]["status"] == "active"


def test_a_bad_token_is_refused_and_basic_auth_or_the_query_token_pass(mailed, served):
    message = reply("Hi", mailed.messages[0]["Message-ID"])
    status, body = post(served, message, RAW)
    assert status == 401 and "X-Nurture-Token" in body["message"]
    assert post(served, message, RAW | {"X-Nurture-Token": "wrong-token-0123456789"})[0] == 403
    wrong = {"Authorization": "Basic " + b64encode(b"inbound:wrong").decode()}
    assert post(served, message, RAW | wrong)[0] == 403
    garbled = {"Authorization": "Basic !!!"}
    assert post(served, message, RAW | garbled)[0] == 401
    basic = {"Authorization": "Basic " + b64encode(f"inbound:{SECRET}".encode()).decode()}
    assert post(served, message, RAW | basic)[1]["outcome"] == "reply"
    request = urllib.request.Request(
        f"{served}/webhooks/email?token={SECRET}", data=message, headers=RAW
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert json.load(answer)["outcome"] == "repeat"  # the basic-auth post recorded it


def test_a_piped_email_is_matched_by_its_sender_and_a_bounce_goes_to_the_bounce_handling(
    mailed, run_store
):
    piped = run_store("leads", "inbound", "--email-file", "-",
                      input=reply("Call me?", sender="SAM@Example.COM").decode())  # fmt: skip
    assert piped.exit_code == 0, piped.output
    assert "lead 1 Sam Carter replied by email (found by its address)" in piped.stderr
    assert [r["text"] for r in shown(run_store)["replies"]] == ["Call me?"]
    welcome = mailed.messages[0]["Message-ID"]
    bounce = dsn(welcome, "sam@example.com", "5.1.1", "550 5.1.1 user unknown")
    (Path.cwd() / "bounce.eml").write_bytes(bounce)
    bounced = run_store("leads", "inbound", "--email-file", "bounce.eml", "--json")
    assert bounced.exit_code == 0, bounced.output
    assert json.loads(bounced.stdout)["outcome"] == "bounce"
    lead = shown(run_store)
    assert "email" in lead["opted_out"] and len(lead["replies"]) == 1
    assert [e["step_id"] for e in lead["engagement"] if e["kind"] == "bounced"] == ["welcome"]
    stranger = run_store("leads", "inbound", "--email-file", "-",
                         input=reply("Who?", sender="who@example.org",
                                     message_id="<r9@x>").decode())  # fmt: skip
    assert stranger.exit_code == 0
    assert "no email was sent to who@example.org and no lead has it" in stranger.stderr
    missing = run_store("leads", "inbound", "--email-file", "nope.eml")
    assert missing.exit_code == 1 and "nope.eml: no such file" in missing.stderr
    both = run_store("leads", "inbound", "1", "--email-file", "-", input="")
    assert both.exit_code == 1 and "give no LEAD" in both.stderr
    junk = run_store("leads", "inbound", "--email-file", "-", input="hello there")
    assert junk.exit_code == 1 and "not an email" in junk.stderr


def test_the_forms_providers_post_and_a_webhook_without_a_secret(
    mailed, run_store, project, store_url, monkeypatch
):
    welcome = mailed.messages[0]["Message-ID"]
    token = {"X-Nurture-Token": SECRET}
    with serving(project, store_url) as client:
        sendgrid = reply("By SendGrid", welcome, message_id="<sg@x>").decode()
        answer = client.post("/webhooks/email", data={"email": sendgrid, "to": "c"}, headers=token)
        assert answer.status_code == 200 and answer.json()["outcome"] == "reply"
        mailgun = reply("By Mailgun", welcome, message_id="<mg@x>").decode()
        files = {"body-mime": (None, mailgun)}
        answer = client.post("/webhooks/email/mime", files=files, headers=token)
        assert answer.json()["matched_by"] == "in-reply-to"
        postmark = {"RawEmail": reply("By Postmark", welcome, message_id="<pm@x>").decode()}
        assert client.post("/webhooks/email", json=postmark, headers=token).status_code == 200
        assert [r["text"] for r in shown(run_store)["replies"]] == [
            "By SendGrid", "By Mailgun", "By Postmark",
        ]  # fmt: skip
        empty = client.post("/webhooks/email", data={"subject": "x"}, headers=token)
        assert empty.status_code == 422 and "`email` (SendGrid" in empty.json()["message"]
        junk = client.post("/webhooks/email", content=b"not mail", headers=RAW | token)
        assert junk.status_code == 400 and "not an email" in junk.json()["message"]
    monkeypatch.delenv("NURTURE_INBOUND_EMAIL__SECRET")
    with serving(project, store_url) as client:
        answer = client.post("/webhooks/email", content=b"x", headers=RAW | token)
        assert answer.status_code == 503
        assert "NURTURE_INBOUND_EMAIL__SECRET" in answer.json()["message"]


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-generated",
        "X-Autoreply: yes",
        "X-Autorespond: Out of office",
        "Precedence: bulk",
        "Precedence: auto_reply",
        "Return-Path: <>",
    ],
)
def test_automatic_answers_are_told_by_their_headers(header):
    assert read_email(reply("Away", "<a@b>", headers=header + "\n")).kind == "auto"


def test_auto_submitted_no_is_a_person_writing():
    assert read_email(reply("Here", "<a@b>", headers="Auto-Submitted: no\n")).kind == "reply"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Yes!\n\nOn Mon, 1 Dec 2026, Kim <k@x.com> wrote:\n> Hi", "Yes!"),
        ("Oui\n\nLe lun. 1 déc. 2026 à 10:00, Kim <k@x.com> a écrit :\n> Salut", "Oui"),
        ("Ja\n\nAm Mo., 1. Dez. 2026 um 10:00 schrieb Kim <k@x.com>:\n> Hallo", "Ja"),
        ("Sure\n\n-----Original Message-----\nFrom: Kim\nSent: Monday\n\nHi", "Sure"),
        ("Sure\n\nFrom: Kim <k@x.com>\nSent: Monday, December 1, 2026\nTo: Sam\n\nHi", "Sure"),
        ("Ok\n\nSent from my iPhone", "Ok"),
        ("Ok\n________________________________\nFrom: Kim", "Ok"),
        ("From my side: all good\nSam", "From my side: all good\nSam"),
    ],
)
def test_quoted_text_and_signatures_are_cut(text, said):
    assert strip_quoted(text) == said


def test_an_html_only_reply_is_read_as_text_without_its_quote():
    html = (
        b"From: sam@example.com\nMessage-ID: <h@x>\nIn-Reply-To: <a@b>\nMIME-Version: 1.0\n"
        b"Content-Type: text/html; charset=utf-8\n\n<div>Works &amp; thanks<br>Sam</div>"
        b'<div class="gmail_quote">On Mon Kim wrote:<blockquote>Hi</blockquote></div>'
    )
    found = read_email(html)
    assert (found.kind, found.text, found.answers) == ("reply", "Works & thanks\nSam", ("<a@b>",))


def test_what_is_not_an_email_says_so():
    for data in (b"", b"just words"):
        with pytest.raises(NurtureError, match="empty|not an email"):
            read_email(data)


def test_the_secret_is_checked_and_never_shown(run, project, monkeypatch):
    monkeypatch.setenv("NURTURE_INBOUND_EMAIL__SECRET", "short-secret")
    result = run("config", "show")
    assert result.exit_code == 1 and "give 16 characters or more" in result.stderr
    assert "short-secret" not in result.output + result.stderr
    monkeypatch.delenv("NURTURE_INBOUND_EMAIL__SECRET")
    (project / "nurture.toml").write_text(f'[inbound_email]\nsecret = "{SECRET}"\n')
    result = run("config", "show")
    assert result.exit_code == 1 and "set NURTURE_INBOUND_EMAIL__SECRET in the" in result.stderr
