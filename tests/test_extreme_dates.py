"""Times a user gives near the ends of the calendar: a clear error naming the option or field.

Python's datetime ends at the years 1 and 9999; nurture takes the years 1900-2999 and spans of
100 years at most, so no delay, send window or time zone applied to them can overflow.
"""

import pytest
from builders import sequence, step, write
from serving import serving, token

from nurture.spec.times import EARLIEST_YEAR, LATEST_YEAR

WELCOME = sequence(
    "Welcome",
    step("Hello"),
    step("Guide", delay_days=1),
    funnels=["web"],
    send_window={"days": "mon-fri", "start": "09:00", "end": "17:00"},
)
RANGE = f"is out of range: give a time in the years {EARLIEST_YEAR}-{LATEST_YEAR}"


@pytest.fixture
def applied(project, run_store):
    write(project, "welcome.yaml", WELCOME)
    assert run_store("apply", "--yes").exit_code == 0
    return project


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--start", "9999-12-31T09:00:00Z"), f"error: --start 9999-12-31T09:00:00+00:00 {RANGE}"),
        (("--start", "0001-01-01T00:00:00"), f"error: --start 0001-01-01T00:00:00 {RANGE}"),
        (("--until", "99999999d"), "error: --until: 99999999d is more than 100 years"),
        (
            ("--event", "+99999999d convert"),
            "error: --event '+99999999d convert': 99999999d is more than 100 years",
        ),
    ],
)
def test_nurture_test_refuses_a_time_or_span_past_the_calendar(project, run, option, message):
    write(project, "welcome.yaml", WELCOME)
    result = run("test", "welcome", "--lead-field", "name=Ana", *option)
    assert result.exit_code == 1
    assert result.stderr.strip() == message
    assert "Traceback" not in result.output and "Overflow" not in result.output


def test_a_dry_run_that_starts_at_the_last_year_allowed_runs(project, run):
    write(project, "welcome.yaml", WELCOME)
    result = run("test", "welcome", "--lead-field", "name=Ana", "--start", "2999-12-31T16:00:00Z")
    assert result.exit_code == 0, result.output
    assert "completed: 2 sent" in result.output


def test_a_test_case_starting_in_9999_is_reported_by_validate_at_its_place(project, run):
    case = {"name": "far", "start": "9999-12-31T09:00:00Z", "expect": {"steps": ["hello"]}}
    write(project, "welcome.yaml", WELCOME | {"tests": [case]})
    result = run("validate")
    assert result.exit_code == 1
    assert result.output.startswith(
        f"sequences/welcome.yaml:21:3: start: 9999-12-31T09:00:00+00:00 {RANGE}\n"
    )
    assert run("test").exit_code == 1


@pytest.mark.parametrize("start", ["9999-12-31T09:00:00Z", "0001-01-01T00:00:00Z"])
def test_the_apis_dry_run_refuses_a_start_past_the_calendar_with_a_422(
    applied, run_store, store_url, start
):
    with serving(applied, store_url) as api:
        body = {"lead": {"name": "Ana"}, "start": start}
        answer = api.post(
            "/api/nurturing-sequences/welcome/test",
            json=body,
            headers=token(run_store, "d", "read"),
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "start"
    assert RANGE in answer.json()["message"]


def test_the_apis_dry_run_refuses_an_until_or_event_over_100_years(applied, run_store, store_url):
    with serving(applied, store_url) as api:
        api.headers.update(token(run_store, "dashboard", "read"))
        until = api.post("/api/nurturing-sequences/welcome/test", json={"until": "99999999d"})
        event = api.post(
            "/api/nurturing-sequences/welcome/test", json={"events": ["+99999999d tag=x"]}
        )
    assert (until.status_code, until.json()["field"]) == (422, "until")
    assert (event.status_code, event.json()["field"]) == (422, "events.0")
    assert "99999999d is more than 100 years" in event.json()["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("run", "--once", "--now", "9999-12-31T23:00:00Z"),
            "error: --now 9999-12-31T23:00:00+00:00",
        ),
        (
            ("stats", "--since", "0001-01-01T00:00:00+05:00"),
            "error: --since 0001-01-01T00:00:00+05:00",
        ),
        (("stats", "--until", "9999-12-31"), "error: --until 9999-12-31T00:00:00"),
        (("stats", "--since", "99999999d"), "error: --since '99999999d': 99999999d is more than"),
    ],
)
def test_the_engines_clock_and_a_stats_window_refuse_times_past_the_calendar(
    applied, run_store, args, message
):
    result = run_store(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert "Overflow" not in result.output
