"""The lead's invitation: an email (real SMTP server, aiosmtpd) carrying an RFC 5545 .ics,
updated and cancelled under the same UID with a higher SEQUENCE; the coach's private feed."""

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import sequence, step, write
from icalendar import Calendar
from servers import Fault, Faults, Mailbox, smtp_server
from serving import serving

SETTINGS = """
channel = "live"
[coach]
name = "Coach Kim"
email = "kim@example.com"
[api]
public_url = "https://nurture.example.com"
[email]
host = "127.0.0.1"
port = {port}
security = "none"
from_address = "kim@example.com"
[availability]
notice = "1h"
[availability.hours]
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-17:00"
"""


@pytest.fixture
def mailbox() -> Any:
    box = Mailbox()
    with smtp_server(box) as port:
        box.port = port  # type: ignore[attr-defined]
        yield box


@pytest.fixture
def booked(run_store, project: Path, mailbox: Any) -> dict[str, Any]:
    with (project / "nurture.toml").open("a") as toml:
        toml.write(SETTINGS.format(port=mailbox.port))
    (project / ".env").write_text(
        "NURTURE_UNSUBSCRIBE__SECRET=u-secret\nNURTURE_AVAILABILITY__SECRET=b-secret\n"
    )
    book = step("Book", "schedule_appointment")
    book["action_config"] |= {"mode": "auto", "after": "0m", "location": "Zoom"}
    write(project, "calls.yaml", sequence("Calls", book, funnels=["website"]))
    assert run_store("apply", "--yes").exit_code == 0
    added = run_store(
        "leads", "add", "-f", "website", "--name", "Ana Ruiz", "--email", "ana@example.com",
        "--tz", "America/New_York",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert run_store("run", "--once").exit_code == 0
    (row,) = json.loads(run_store("appointments", "list", "--json").stdout)
    return row


def ics(mail: Any) -> tuple[Any, Any]:
    """The invitation's calendar and its one event, parsed back."""
    (part,) = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_filename() == "invite.ics"
    parsed = Calendar.from_ical(part.get_content())
    (event,) = parsed.walk("VEVENT")
    return parsed, event


def test_the_lead_gets_an_invitation_they_can_add_to_their_calendar(booked, mailbox):
    (mail,) = mailbox.messages
    assert mail["To"] == "ana@example.com" and mail["Subject"].startswith("Invitation: Check-in")
    text = mail.get_body(("plain",)).get_content()
    assert "(America/New_York)" in text and "Where: Zoom" in text
    assert "https://nurture.example.com/book/" in text  # to move or cancel it
    parsed, event = ics(mail)
    assert str(parsed["method"]) == "REQUEST" and str(parsed["version"]) == "2.0"
    assert str(event["uid"]) == booked["uid"] and int(event["sequence"]) == 0
    assert event.decoded("dtstart") == datetime.fromisoformat(booked["starts_at"])
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(minutes=30)
    assert str(event["organizer"]) == "mailto:kim@example.com"
    assert str(event["attendee"]) == "mailto:ana@example.com"
    assert str(event["status"]) == "CONFIRMED" and str(event["location"]) == "Zoom"


def test_a_move_and_a_cancellation_update_the_same_event(run_store, booked, mailbox):
    new = datetime.fromisoformat(booked["starts_at"]) + timedelta(days=1)
    moved = run_store("appointments", "reschedule", str(booked["id"]), new.isoformat())
    assert moved.exit_code == 0, moved.output
    assert "1 invitation sent" in moved.output
    cancelled = run_store("appointments", "cancel", str(booked["id"]))
    assert cancelled.exit_code == 0 and "1 invitation sent" in cancelled.output, cancelled.output
    first, update, cancel = mailbox.messages
    assert update["Subject"].startswith("Updated: Check-in")
    assert cancel["Subject"] == "Cancelled: Check-in"
    (_, one), (_, two), (parsed, three) = ics(first), ics(update), ics(cancel)
    assert str(one["uid"]) == str(two["uid"]) == str(three["uid"])
    assert [int(e["sequence"]) for e in (one, two, three)] == [0, 1, 2]
    assert two.decoded("dtstart") == new
    assert str(parsed["method"]) == "CANCEL" and str(three["status"]) == "CANCELLED"
    assert run_store("appointments", "sync-calendar").exit_code == 0
    assert len(mailbox.messages) == 3  # each revision is mailed once


def test_an_invitation_that_failed_is_sent_by_the_next_sync(run_store, booked, mailbox):
    new = datetime.fromisoformat(booked["starts_at"]) + timedelta(days=1)
    mailbox.reply = "451 4.3.0 Try again later"
    moved = run_store("appointments", "reschedule", str(booked["id"]), new.isoformat())
    assert "the invitation will be sent again" in moved.output
    mailbox.reply = None
    assert "1 invitation sent" in run_store("appointments", "sync-calendar").output
    assert len(mailbox.messages) == 2


def test_an_invitation_whose_fate_is_unclear_is_never_mailed_again(run_store, booked, mailbox):
    new = datetime.fromisoformat(booked["starts_at"]) + timedelta(days=1)
    mailbox.faults = Faults()
    mailbox.faults.push(Fault("drop"))  # stored, then the connection is cut before the reply
    moved = run_store("appointments", "reschedule", str(booked["id"]), new.isoformat())
    assert moved.exit_code == 0, moved.output
    assert "the invitation may have been sent (not sent again)" in moved.output
    assert "no reply after the message was sent" in moved.output
    synced = run_store("appointments", "sync-calendar", "--json")
    assert json.loads(synced.stdout)["invited"] == 0
    first, update = mailbox.messages  # the relay has it once; no second copy
    assert update["Subject"].startswith("Updated: Check-in")


def test_the_coach_subscribes_to_a_private_feed(run_store, booked, project, store_url):
    url = run_store("appointments", "feed-url").stdout.strip()
    assert url.startswith("https://nurture.example.com/calendar/") and url.endswith(".ics")
    path = url.removeprefix("https://nurture.example.com")
    with serving(project, store_url) as client:
        answer = client.get(path)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/calendar")
        feed = Calendar.from_ical(answer.content)
        (event,) = feed.walk("VEVENT")
        assert str(event["uid"]) == booked["uid"] and str(event["summary"]) == "Check-in"
        forged = client.get(path.replace("/calendar/", "/calendar/x"))
        assert forged.status_code == 400 and "not valid" in forged.text
