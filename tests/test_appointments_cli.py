"""`nurture appointments`: list, reschedule, done, no-show, cancel, and what each outcome does to
the lead's sequences (branch, stop, convert, start a no-show sequence)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import sequence, step, write

AVAILABILITY = """
[availability]
notice = "1h"
horizon = "14d"
[availability.hours]
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-17:00"
"""


def consult() -> dict[str, Any]:
    book = step("Book", "schedule_appointment")
    book["action_config"] |= {"mode": "auto", "after": "0m", "converts_on": ["attended"]}
    reminder = step("Reminder", "send_sms", relative_to="appointment", delay="-1h")
    thanks = step("Thanks", "send_sms", relative_to="appointment", delay="+2h")
    thanks["conditions"] = {"appointment": "attended"}
    missed = step("Missed you", "send_sms", relative_to="appointment", delay="+2h")
    missed["conditions"] = {"appointment": ["no_show", "cancelled"]}
    missed["id"] = "missed"
    return sequence("Consult", book, reminder, thanks, missed, funnels=["website"])


def rebook() -> dict[str, Any]:
    doc = sequence("Rebook", step("Try again"), funnels=["website"])
    return doc | {"trigger_conditions": {"appointment": "no_show"}, "re_entry": "always"}


@pytest.fixture
def booked(run_store, project: Path) -> dict[str, Any]:
    """A lead who came through the website, auto-booked by `nurture run --once`."""
    with (project / "nurture.toml").open("a") as toml:
        toml.write(AVAILABILITY)
    write(project, "consult.yaml", consult())
    write(project, "rebook.yaml", rebook())
    assert run_store("apply", "--yes").exit_code == 0
    added = run_store(
        "leads", "add", "-f", "website", "--name", "Ana Ruiz", "--phone", "+34600000001"
    )
    assert added.exit_code == 0, added.output
    assert run_store("run", "--once").exit_code == 0
    (row,) = json.loads(run_store("appointments", "list", "--json").stdout)
    return row


def enrollment(run_store, sequence_name: str) -> dict[str, Any]:
    rows = json.loads(run_store("enrollments", "list", "-s", sequence_name, "--json").stdout)
    return rows[0]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_the_first_free_slot_is_booked_and_the_reminder_waits_for_it(run_store, booked):
    assert booked["status"] == "booked" and booked["mode"] == "auto"
    start = at(booked["starts_at"])
    assert start >= datetime.now(UTC) + timedelta(hours=1)  # the notice
    assert start.weekday() < 5 and 9 <= start.hour < 17  # the project's zone is UTC
    assert at(enrollment(run_store, "Consult")["next_run_at"]) == start - timedelta(hours=1)
    upcoming = run_store("appointments", "list", "--upcoming")
    assert "Check-in" in upcoming.stdout and "booked" in upcoming.stdout


def test_rescheduling_moves_the_call_and_its_reminder(run_store, booked):
    new = (at(booked["starts_at"]) + timedelta(days=1)).replace(hour=10, minute=0)
    moved = run_store("appointments", "reschedule", str(booked["id"]), f"{new:%Y-%m-%dT%H:%M}")
    assert moved.exit_code == 0, moved.output
    assert f"moved to {new:%Y-%m-%d %H:%M} UTC" in moved.output
    assert at(enrollment(run_store, "Consult")["next_run_at"]) == new - timedelta(hours=1)
    row = json.loads(run_store("appointments", "list", "--json").stdout)[0]
    assert row["revision"] == 1 and at(row["starts_at"]) == new


def test_a_no_show_branches_and_starts_the_no_show_sequence(run_store, booked):
    shown = run_store("appointments", "done", str(booked["id"]), "--no-show")
    assert shown.exit_code == 0, shown.output
    assert "no show" in shown.output and "enrolled in Rebook" in shown.output
    assert enrollment(run_store, "Rebook")["status"] == "active"
    explained = run_store("explain", "1")
    assert "Rebook" in explained.stdout


def test_attended_converts_the_lead(run_store, booked):
    done = run_store("appointments", "done", str(booked["id"]), "--json")
    assert json.loads(done.stdout)["status"] == "attended"
    lead = json.loads(run_store("leads", "show", "1", "--json").stdout)
    assert lead["status"] == "Converted"
    assert enrollment(run_store, "Consult")["status"] == "converted"


def test_cancel_frees_the_slot_and_the_missed_step_runs_at_once(run_store, booked):
    assert run_store("appointments", "cancel", str(booked["id"])).exit_code == 0
    assert at(enrollment(run_store, "Consult")["next_run_at"]) <= datetime.now(UTC)
    again = run_store("appointments", "cancel", str(booked["id"]))
    assert again.exit_code == 1 and "cancelled: nothing to cancel" in again.output


def test_unknown_appointments_and_bad_times_are_clear_errors(run_store, booked):
    missing = run_store("appointments", "done", "99")
    assert missing.exit_code == 1 and "no appointment 99" in missing.output
    bad = run_store("appointments", "reschedule", str(booked["id"]), "next tuesday")
    assert bad.exit_code == 1 and "not an ISO 8601 time" in bad.output
    far = run_store("appointments", "reschedule", str(booked["id"]), "9999-12-31T23:00-14:00")
    assert far.exit_code == 1 and "give a time in the years 1900-2999" in far.output


def test_after_a_no_show_the_reminder_before_the_call_is_skipped(run_store, booked):
    run_store("appointments", "done", str(booked["id"]), "--no-show")
    assert run_store("run", "--once").exit_code == 0  # the reminder: skipped, its call is over
    logs = run_store("logs", "--json")
    assert logs.exit_code == 0, logs.output
    by_step = {row["step_id"]: row for row in json.loads(logs.stdout) if "step_id" in row}
    assert by_step["reminder"]["status"] == "skipped"


def test_stats_explain_and_the_report_show_the_calls(run_store, booked, project: Path):
    run_store("appointments", "done", str(booked["id"]), "--no-show")
    figures = json.loads(run_store("stats", "--json").stdout)["appointments"]
    assert figures == [
        {"sequence": "Consult", "offered": 0, "booked": 0, "attended": 0, "no_show": 1,
         "cancelled": 0, "unbooked": 0, "conflict": 0, "show_rate": 0.0},
    ]  # fmt: skip
    assert "Appointments" in run_store("stats").stdout
    explained = run_store("explain", "1")
    assert f"appointment {booked['id']} Check-in: no show" in explained.stdout
    assert (
        "after the appointment" in explained.stdout or "before the appointment" in explained.stdout
    )
    page = project / "report.html"
    assert run_store("report", "--html", str(page)).exit_code == 0
    assert 'id="appointments"' in page.read_text()
