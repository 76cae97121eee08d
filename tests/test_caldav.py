"""The coach's calendar over CalDAV, against a real Radicale server: its busy times are never
offered or booked, and booked, moved and cancelled calls land in it once each."""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import sequence, step, write
from calendars import dentist, ours
from servers import free_port
from serving import serving

from nurture.rules.availability import Availability, free_slots

HOURS = "\n".join(f'{day} = "09:00-12:00"' for day in ("mon", "tue", "wed", "thu", "fri"))
SETTINGS = """
[api]
public_url = "https://nurture.example.com"
[availability]
slot = "1h"
notice = "0m"
horizon = "10d"
[availability.hours]
{hours}
"""


@pytest.fixture
def project_with_calendar(
    run_store, project: Path, radicale: str, coach_calendar: Any, calendar_login: Any
) -> dict[str, Any]:
    """Kim's calendar, with a password or through OAuth (each test runs with both), a dentist's
    appointment in its first free slot; a sequence that books, one that offers, applied."""
    with (project / "nurture.toml").open("a") as toml:
        toml.write(SETTINGS.format(hours=HOURS))
        toml.write(calendar_login.settings(coach_calendar.url, radicale))
    (project / ".env").write_text(calendar_login.env + "NURTURE_AVAILABILITY__SECRET=b\n")
    availability = Availability.model_validate(
        {"hours": {d: "09:00-12:00" for d in ("mon", "tue", "wed", "thu", "fri")}}
        | {"slot": "1h", "notice": "0m", "horizon": "10d"}
    )
    first, second = free_slots(availability, "UTC", datetime.now(UTC) + timedelta(minutes=5))[:2]
    dentist(coach_calendar, first)
    book = step("Book", "schedule_appointment")
    book["action_config"] |= {"mode": "auto", "after": "0m"}
    offer = step("Offer", "schedule_appointment")
    offer["action_config"] |= {"mode": "offer"}
    write(project, "calls.yaml", sequence("Calls", book, funnels=["website"]))
    write(project, "offers.yaml", sequence("Offers", offer, funnels=["offers"]))
    assert run_store("apply", "--yes").exit_code == 0
    return {"busy": first, "next": second, "calendar": coach_calendar, "login": calendar_login}


def add_lead(run_store, funnel: str, name: str) -> None:
    added = run_store("leads", "add", "-f", funnel, "--name", name, "--email", f"{name}@x.com")
    assert added.exit_code == 0, added.output


def test_check_calendar_lists_the_coach_s_busy_times(run_store, project_with_calendar):
    checked = run_store("appointments", "check-calendar")
    assert checked.exit_code == 0, checked.output
    assert "✓ Coach Kim: 1 busy period in the next 10d" in checked.output
    assert f"{project_with_calendar['busy']:%Y-%m-%d %H:%M}" in checked.stdout
    tokens = project_with_calendar["login"].tokens
    assert tokens is None or tokens.grants == 1  # OAuth: one access token for every request


def test_a_busy_time_is_never_booked_and_the_booking_lands_in_the_calendar(
    run_store, project_with_calendar
):
    busy, calendar = project_with_calendar["busy"], project_with_calendar["calendar"]
    free = project_with_calendar["next"]
    add_lead(run_store, "website", "ana")
    ran = run_store("run", "--once")
    assert ran.exit_code == 0, ran.output
    (row,) = json.loads(run_store("appointments", "list", "--json").stdout)
    assert row["status"] == "booked"
    assert datetime.fromisoformat(row["starts_at"]) == free  # the next slot: not the dentist's
    (event,) = ours(calendar)
    assert str(event["uid"]) == row["uid"] and event.decoded("dtstart") == free
    moved_to = busy + timedelta(days=1, hours=2)
    assert (
        run_store("appointments", "reschedule", str(row["id"]), moved_to.isoformat()).exit_code == 0
    )
    (event,) = ours(calendar)  # the same event, moved: not a second one
    assert event.decoded("dtstart") == moved_to and int(event["sequence"]) == 1
    assert run_store("appointments", "cancel", str(row["id"])).exit_code == 0
    assert run_store("appointments", "sync-calendar").exit_code == 0  # again: nothing doubles
    (event,) = ours(calendar)
    assert str(event["status"]) == "CANCELLED" and int(event["sequence"]) == 2


def test_the_booking_page_never_offers_a_busy_time(
    run_store, project_with_calendar, project: Path, store_url: str
):
    from nurture.rules.booking import make_token

    busy = project_with_calendar["busy"]
    add_lead(run_store, "offers", "bo")
    assert run_store("run", "--once").exit_code == 0
    token = make_token("b", 1, datetime.now(UTC))
    with serving(project, store_url) as client:
        page = client.get(f"/book/{token}")
        assert page.status_code == 200, page.text
        offered = [
            datetime.fromisoformat(s) for s in re.findall(r'name="slot" value="([^"]+)"', page.text)
        ]
        assert busy not in offered and project_with_calendar["next"] in offered


def test_with_the_calendar_down_nothing_is_booked_blind(run_store, project_with_calendar, project):
    _move_calendar(project / "nurture.toml", f"http://127.0.0.1:{free_port()}")
    add_lead(run_store, "website", "cy")
    assert run_store("run", "--once").exit_code == 0
    assert json.loads(run_store("appointments", "list", "--json").stdout) == []
    logs = json.loads(run_store("logs", "--json").stdout)
    assert any("could not read the coach's calendar" in (row.get("error") or "") for row in logs)
    assert "secret" not in json.dumps(logs) and "token-test" not in json.dumps(logs)


def test_the_dry_run_with_calendar_books_around_the_coach_s_busy_time(
    run_store, project_with_calendar, project: Path
):
    busy, free = project_with_calendar["busy"], project_with_calendar["next"]
    lead = ["--lead-field", "name=Ana", "--lead-field", "email=ana@x.com"]
    args = ["test", "Calls", *lead, "--start", (busy - timedelta(minutes=1)).isoformat(), "--json"]

    def booked(*more: str) -> str:
        result = run_store(*args, *more)
        assert result.exit_code == 0, result.output
        timeline = json.loads(result.stdout)["timeline"]
        (book,) = [row for row in timeline if row.get("step") == "book"]
        return book["detail"]

    assert f"at {busy:%Y-%m-%d %H:%M} UTC" in booked()  # the availability only: the dentist's
    assert f"at {free:%Y-%m-%d %H:%M} UTC" in booked("--calendar")  # the calendar says busy
    assert ours(project_with_calendar["calendar"]) == []  # a dry run writes nothing there
    _move_calendar(project / "nurture.toml", f"http://127.0.0.1:{free_port()}")
    down = run_store(*args, "--calendar")
    assert down.exit_code == 1
    assert "--calendar: could not reach the coach's calendar at http://127.0.0.1:" in down.output


def _move_calendar(toml: Path, base: str) -> None:
    """The calendar's URL in nurture.toml, at another base URL (nothing there: it is down)."""
    moved = re.sub(
        r'^url = "http://127\.0\.0\.1:\d+', f'url = "{base}', toml.read_text(), flags=re.M
    )
    toml.write_text(moved)


@pytest.mark.parametrize("calendar_login", ["oauth"], indirect=True)
def test_with_google_s_refresh_token_revoked_a_booking_waits_and_says_what_to_fix(
    run_store, project_with_calendar
):
    project_with_calendar["login"].tokens.revoke()
    add_lead(run_store, "website", "di")
    assert run_store("run", "--once").exit_code == 0
    assert json.loads(run_store("appointments", "list", "--json").stdout) == []
    logs = json.loads(run_store("logs", "--json").stdout)
    (row,) = [row for row in logs if "refused the refresh token" in (row.get("error") or "")]
    assert row["status"] == "retry"  # booked once a new refresh token is set, not blind
    assert "NURTURE_AVAILABILITY__CALDAV__OAUTH__REFRESH_TOKEN" in row["error"]
    assert "token-test" not in json.dumps(logs) and "client-secret" not in json.dumps(logs)
