"""Backfills: `--at WHEN` and an import's `created_at` place what a lead did in the past.

A coach moving from another tool brings leads in at the point they were: delays, send
windows and stats count from the time given, while the clock stays the clock.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from builders import sequence, step, write

WINDOW = {"days": "mon-fri", "start": "09:00", "end": "18:00"}


@pytest.fixture
def nurture(run_store, project: Path):
    """Weekday office hours, a first text two hours after the lead arrives."""
    write(
        project,
        "welcome.yaml",
        sequence(
            "Welcome",
            step("Hi", delay_hours=2),
            step("Follow up", delay_days=2),
            funnels=["Website"],
            send_window=WINDOW,
        ),
    )
    assert run_store("apply", "--yes").exit_code == 0
    return run_store


def shown(nurture, lead: str = "1") -> dict:
    return json.loads(nurture("leads", "show", lead, "--json").stdout)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_lead_added_friday_at_five_in_its_zone_gets_its_first_step_monday_at_nine(nurture):
    result = nurture(
        "leads", "add", "--funnel", "website", "--name", "Ana Ruiz", "--tz", "Europe/Madrid",
        "--at", "2026-03-06T17:00", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # Friday 17:00 + 2 h is past the window's close (18:00): the next opening, Monday 09:00
    enrolled = json.loads(result.stdout)["enrollments"][0]
    assert utc(enrolled["next_run_at"]) == utc("2026-03-09T09:00:00+01:00")
    lead = shown(nurture)
    assert utc(lead["created_at"]) == utc("2026-03-06T17:00:00+01:00")
    assert utc(lead["enrollments"][0]["enrolled_at"]) == utc("2026-03-06T17:00:00+01:00")


def test_a_time_with_an_offset_is_that_moment_and_one_without_reads_in_the_projects_zone(
    nurture, project
):
    (project / "nurture.toml").write_text('timezone = "America/New_York"\n', encoding="utf-8")
    add = ("leads", "add", "--funnel", "website", "--json")
    nurture(*add, "--name", "Ana", "--at", "2026-03-06T10:00")
    nurture(*add, "--name", "Bo", "--at", "2026-03-06T10:00+01:00")
    assert utc(shown(nurture, "1")["created_at"]) == utc("2026-03-06T10:00:00-05:00")
    assert utc(shown(nurture, "2")["created_at"]) == utc("2026-03-06T09:00:00Z")


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("next friday", "error: --at 'next friday': not an ISO 8601 time (e.g. 2026-03-06T17:00"),
        ("2026-13-01", "error: --at '2026-13-01': not an ISO 8601 time"),
        ("1066-10-14", "error: --at '1066-10-14': 1066-10-14T00:00:00 is out of range"),
        ("2999-01-01T00:00Z", "error: --at '2999-01-01T00:00Z' is in the future (2999-01-01 00:00"),
    ],
)
def test_a_time_unreadable_or_in_the_future_is_refused_naming_the_option(nurture, at, message):
    result = nurture("leads", "add", "--funnel", "website", "--name", "Ana", "--at", at)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.output
    assert json.loads(nurture("leads", "list", "--json").stdout) == []


def test_a_clock_a_little_behind_the_senders_is_not_the_future(nurture):
    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    result = nurture("leads", "add", "--funnel", "website", "--name", "Ana", "--at", soon)
    assert result.exit_code == 0, result.output


IMPORT = """\
External ID,Full Name,Time Zone,created_at
crm-1,Ana Ruiz,Europe/Madrid,2026-03-06 17:00
crm-2,Bo Berg,,2026-03-02T08:00:00Z
crm-3,Cy Chan,,last tuesday
crm-4,Dee Dow,,
"""


def test_an_imported_rows_created_at_is_when_it_arrived_and_a_bad_one_names_row_and_column(
    nurture, project
):
    path = project / "leads.csv"
    path.write_text(IMPORT, encoding="utf-8")
    args = ("leads", "import", str(path), "--funnel", "website", "--json")
    result = nurture(*args, "--at", "2026-03-04T12:00Z")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["created"], report["enrolled"]) == (3, 3)
    assert [(e["row"], e["message"]) for e in report["errors"]] == [
        (4, "created_at 'last tuesday': not an ISO 8601 time "
            "(e.g. 2026-03-06T17:00, or with an offset: 2026-03-06T17:00+01:00)"),
    ]  # fmt: skip
    ana, bo, dee = (shown(nurture, ref) for ref in ("crm-1", "crm-2", "crm-4"))
    assert utc(ana["created_at"]) == utc("2026-03-06T17:00:00+01:00")  # in its lead's zone
    assert utc(ana["enrollments"][0]["next_run_at"]) == utc("2026-03-09T09:00:00+01:00")
    assert utc(bo["created_at"]) == utc("2026-03-02T08:00:00Z")
    assert utc(bo["enrollments"][0]["next_run_at"]) == utc("2026-03-02T10:00:00Z")
    assert utc(dee["created_at"]) == utc("2026-03-04T12:00:00Z")  # no time of its own: --at
    assert "fields" not in ana or "created_at" not in ana["fields"]


def test_a_conversion_at_a_date_shows_in_stats_at_that_date(nurture):
    add = ("leads", "add", "--funnel", "website", "--name", "Ana", "--external-id", "crm-1")
    assert nurture(*add, "--at", "2026-03-02T10:00Z").exit_code == 0
    converted = nurture("leads", "convert", "crm-1", "--at", "2026-03-05T10:00Z")
    assert converted.exit_code == 0, converted.output
    march = ("stats", "--since", "2026-03-01", "--until", "2026-03-08", "--json")
    welcome = json.loads(nurture(*march).stdout)["sequences"][0]
    assert (welcome["assigned"], welcome["converted"]) == (1, 1)
    assert welcome["avg_conversion_seconds"] == 3 * 24 * 3600
    lead = shown(nurture)
    assert utc(lead["converted_at"]) == utc("2026-03-05T10:00:00Z")
    assert utc(lead["enrollments"][0]["finished_at"]) == utc("2026-03-05T10:00:00Z")
    this_week = json.loads(nurture("stats", "--since", "7d", "--json").stdout)["sequences"][0]
    assert this_week["assigned"] == 0


def test_an_update_and_an_inbound_message_at_a_time_read_it_in_the_leads_zone(nurture):
    add = ("leads", "add", "--funnel", "website", "--name", "Ana", "--tz", "Asia/Tokyo")
    assert nurture(*add, "--at", "2026-03-02T09:00").exit_code == 0
    updated = nurture("leads", "update", "1", "--score", "70", "--at", "2026-03-03T09:00")
    assert updated.exit_code == 0, updated.output
    assert utc(shown(nurture)["updated_at"]) == utc("2026-03-03T09:00:00+09:00")
    wrote = nurture("leads", "inbound", "1", "--text", "hi", "--at", "2026-03-04T09:00")
    assert wrote.exit_code == 0, wrote.output
    assert utc(shown(nurture)["last_inbound_at"]) == utc("2026-03-04T09:00:00+09:00")
    refused = nurture("leads", "convert", "1", "--at", "tomorrow")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: --at 'tomorrow': not an ISO 8601 time")
