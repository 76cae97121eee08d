"""The dry run books against the coach's availability and shows the slot and when reminders go:
a day before a 09:00 call is 09:00 the day before, across a daylight-saving change too."""

import json
from pathlib import Path

import pytest
import yaml

from nurture.rules.booking import relative_due

TOML = """\
timezone = "Europe/Madrid"
[availability]
notice = "2h"
[availability.hours]
mon = "09:00-10:00"
"""
SEQUENCE = {
    "name": "Consult",
    "steps": [
        {
            "name": "Book",
            "action_type": "schedule_appointment",
            "action_config": {"title": "Discovery call", "mode": "auto", "after": "0m"},
        },
        {
            "name": "Two days before",
            "action_type": "send_sms",
            "relative_to": "appointment",
            "delay": "-2d",
            "action_config": {"message": "See you {{ appointment.when }}"},
        },
        {
            "name": "An hour before",
            "action_type": "send_sms",
            "relative_to": "appointment",
            "delay": "-1h",
            "action_config": {"message": "In an hour!"},
        },
        {
            "name": "Thanks",
            "action_type": "send_sms",
            "relative_to": "appointment",
            "delay": "+2h",
            "conditions": {"appointment": "attended"},
            "action_config": {"message": "Thanks for coming"},
        },
    ],
}


@pytest.fixture
def consult(project: Path) -> Path:
    (project / "nurture.toml").write_text(TOML)
    (project / "sequences" / "consult.yaml").write_text(yaml.safe_dump(SEQUENCE, sort_keys=False))
    return project


def dry_run(run, *events: str) -> dict:
    lead = ["--lead-field", "name=Ana", "--lead-field", "phone=+34600000001", "--tz"]
    args = ["test", "consult", *lead, "Europe/Madrid", "--start", "2026-03-26T12:00Z"]
    result = run(*args, *[arg for event in events for arg in ("--event", event)], "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_reminders_keep_the_lead_s_wall_clock_across_the_spring_change(run, consult):
    # Madrid moves its clocks forward on Sun 29 March 2026; the call is Mon 30, 09:00 CEST.
    timeline = dry_run(run, "+3d20h attended")["timeline"]
    steps = {row["step"]: row for row in timeline if row["kind"] == "step"}
    assert steps["book"]["detail"].startswith("appointment: Discovery call at 2026-03-30 07:00 UTC")
    assert steps["two-days-before"]["local"] == "Sat 2026-03-28 09:00 CET"
    assert steps["two-days-before"]["at"] == "2026-03-28T08:00:00+00:00"
    assert steps["two-days-before"]["message"]["body"] == (
        "See you Monday 30 March 2026, 09:00 (Europe/Madrid)"
    )
    assert steps["an-hour-before"]["local"] == "Mon 2026-03-30 08:00 CEST"
    assert steps["thanks"]["local"] == "Mon 2026-03-30 11:00 CEST"
    assert steps["thanks"]["outcome"] == "sent"


def test_a_step_after_the_call_checks_what_became_of_it(run, consult):
    timeline = dry_run(run, "+3d20h no-show")["timeline"]
    steps = {row["step"]: row for row in timeline if row["kind"] == "step"}
    assert steps["thanks"]["outcome"] == "skipped"
    assert "appointment: wants attended" in " ".join(steps["thanks"]["notes"])


def test_a_cancelled_call_skips_its_reminders(run, consult):
    timeline = dry_run(run, "+1h cancel")["timeline"]
    skipped = [row["step"] for row in timeline if row["outcome"] == "skipped"]
    assert skipped == ["two-days-before", "an-hour-before", "thanks"]
    assert timeline[-1]["at"] <= "2026-03-26T13:00:00+00:00"  # at once, not at the call's time


def test_an_outcome_event_without_a_booked_call_is_a_clear_error(run, consult):
    result = run("test", "consult", "--lead-field", "name=Ana", "--event", "+0m cancel")
    assert result.exit_code == 1 and "the lead has no booked call by then" in result.output


@pytest.mark.parametrize(
    ("start", "offset_hours", "expected"),
    [
        ("2026-10-26T08:00Z", -24, "2026-10-25T08:00Z"),  # Madrid falls back on Sun 25 Oct
        ("2026-10-26T08:00Z", -48, "2026-10-24T07:00Z"),  # Sat 24, still summer time: 09:00
        ("2026-10-24T07:00Z", 50, "2026-10-26T10:00Z"),  # 2d on the clock, then 2h
    ],
)
def test_whole_days_count_on_the_wall_clock(start: str, offset_hours: int, expected: str):
    from datetime import datetime, timedelta

    moved = relative_due(
        datetime.fromisoformat(start), timedelta(hours=offset_hours), "Europe/Madrid"
    )
    assert moved == datetime.fromisoformat(expected)


GUIDE = Path(__file__).parents[1] / "docs" / "guides" / "appointments.md"


def _blocks(kind: str) -> list[str]:
    import re

    return re.findall(rf"```{kind}\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)


def test_the_guide_s_settings_and_sequences_validate_and_run(run, project: Path):
    toml = _blocks("toml")
    settings = toml[0] + toml[1].replace("[api]", "\n[api]")
    (project / "nurture.toml").write_text('timezone = "UTC"\n' + settings)
    (project / ".env").write_text("NURTURE_AVAILABILITY__SECRET=s\n")
    sequences = [text for text in _blocks("yaml") if text.startswith("name:")]
    for number, text in enumerate(sequences):
        (project / "sequences" / f"guide-{number}.yaml").write_text(text)
    checked = run("validate", "--strict")
    assert checked.exit_code == 0, checked.output
    args = ["--lead-field", "name=Ana", "--lead-field", "email=ana@example.com"]
    args += ["--tz", "America/New_York", "--start", "2026-12-07T08:00Z"]
    timeline = json.loads(run("test", "Discovery Call", *args, "--json").stdout)["timeline"]
    sent = {row["step"]: row for row in timeline if row["outcome"] == "sent"}
    assert "/book/" in sent["send-the-link"]["message"]["body"]
    assert [row["step"] for row in timeline if row["kind"] == "step"][:2] == [
        "offer-a-call",
        "send-the-link",
    ]


def test_a_dry_run_with_calendar_needs_one(run, consult):
    result = run("test", "consult", "--lead-field", "name=Ana", "--calendar")
    assert result.exit_code == 1
    assert "--calendar reads the coach's calendar: add [availability.caldav]" in result.output
