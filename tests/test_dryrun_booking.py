"""A call offered in a dry run (`mode: offer`): the slots its booking page offers are shown, and
a `book` event books one as the page does, so the steps timed from the call run."""

import json
from pathlib import Path

import pytest
import yaml

TOML = """\
timezone = "Europe/Madrid"
[availability]
notice = "2h"
[availability.hours]
mon = "09:00-10:00"
tue = "09:00-10:00"
"""
SEQUENCE = {
    "name": "Offer",
    "steps": [
        {
            "name": "Offer",
            "action_type": "schedule_appointment",
            "action_config": {"title": "Discovery call", "mode": "offer"},
        },
        {
            "name": "An hour before",
            "action_type": "send_sms",
            "relative_to": "appointment",
            "delay": "-1h",
            "action_config": {"message": "See you {{ appointment.when }}"},
        },
    ],
}
START = "2026-03-26T12:00Z"  # a Thursday; the first slots are Mon 30 March, 09:00 CEST


@pytest.fixture
def offer(project: Path) -> Path:
    (project / "nurture.toml").write_text(TOML)
    (project / "sequences" / "offer.yaml").write_text(yaml.safe_dump(SEQUENCE, sort_keys=False))
    return project


def dry_run(run, *events: str):
    lead = ["--lead-field", "name=Ana", "--lead-field", "phone=+34600000001", "--tz"]
    args = ["test", "offer", *lead, "Europe/Madrid", "--start", START]
    return run(*args, *[arg for event in events for arg in ("--event", event)], "--json")


def timeline(run, *events: str) -> list[dict]:
    result = dry_run(run, *events)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["timeline"]


def test_an_offered_call_shows_the_slots_its_page_offers(run, offer):
    rows = timeline(run)
    offered = next(row for row in rows if row["step"] == "offer")
    assert offered["detail"] == "appointment: Discovery call (offered)"
    assert offered["notes"] == [
        "the booking page offers Mon 03-30 09:00, Mon 03-30 09:30, Tue 03-31 09:00 CEST "
        "and 5 more until Tue 04-07"  # a 14-day horizon: two weeks of Mon and Tue
    ]
    assert rows[-1]["kind"] == "end" and rows[-1]["outcome"] == "pending"
    assert rows[-1]["detail"] == "next: an-hour-before once the lead books a call"


def test_a_book_event_books_the_first_slot_and_the_reminders_follow(run, offer):
    rows = timeline(run, "+1h book")
    steps = {row["step"]: row for row in rows if row["kind"] == "step"}
    assert steps["offer"]["detail"] == "appointment: Discovery call at 2026-03-30 07:00 UTC"
    event = next(row for row in rows if row["kind"] == "event")
    assert event["notes"] == ["the lead booked Mon 2026-03-30 09:00 CEST"]
    reminder = steps["an-hour-before"]
    assert (reminder["outcome"], reminder["local"]) == ("sent", "Mon 2026-03-30 08:00 CEST")
    assert reminder["message"]["body"] == "See you Monday 30 March 2026, 09:00 (Europe/Madrid)"
    assert rows[-1]["detail"] == "completed"


def test_a_book_event_can_name_the_slot_in_the_lead_s_zone_or_with_its_offset(run, offer):
    for named in ("2026-03-31T09:30", "2026-03-31T07:30Z"):
        steps = {row["step"]: row for row in timeline(run, f"+1h book={named}") if row["step"]}
        assert steps["offer"]["detail"] == "appointment: Discovery call at 2026-03-31 07:30 UTC"
        assert steps["an-hour-before"]["local"] == "Tue 2026-03-31 08:30 CEST"


@pytest.mark.parametrize(
    ("events", "said"),
    [
        (
            ["+1h book=2026-03-30T11:00"],
            "book=2026-03-30T11:00: not a slot the booking page offers then (the first free "
            "one is 2026-03-30T09:00 CEST)",
        ),
        (["+1h book=Monday"], "book=Monday: write the slot's time as 2026-12-08T15:00"),
        (["+1h cancel", "+2h book"], "book: the lead has no offered (or booked) call by then"),
    ],
)
def test_a_book_event_that_cannot_book_says_why(run, offer, events, said):
    result = dry_run(run, *events)
    assert result.exit_code == 1
    assert said in " ".join(result.output.split())
