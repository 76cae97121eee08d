"""The coach's calendar over CalDAV, against a real Radicale server: its busy times are never
offered or booked, and booked, moved and cancelled calls land in it once each."""

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import caldav
import pytest
from builders import sequence, step, write
from icalendar import Calendar
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
[availability.caldav]
url = "{url}"
username = "coach"
"""


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[str]:
    """Radicale on a free port, storing in a temp folder, any login accepted: its URL."""
    port, config = free_port(), tmp_path / "radicale.conf"
    config.write_text(
        f"[server]\nhosts = 127.0.0.1:{port}\n[auth]\ntype = none\n"
        f"[storage]\nfilesystem_folder = {tmp_path / 'collections'}\n[logging]\nlevel = warning\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", str(config)], stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "Radicale did not start"
            time.sleep(0.1)
    try:
        yield url
    finally:
        server.terminate()
        server.communicate(timeout=10)


@pytest.fixture
def coach_calendar(radicale: str) -> Any:
    client = caldav.DAVClient(radicale, username="coach", password="secret")
    return client.principal().make_calendar(name="Coach Kim")


def dentist(calendar: Any, start: datetime) -> None:
    """The coach's own appointment elsewhere, in their calendar (not one of nurture's)."""
    stamp = f"{start:%Y%m%dT%H%M%SZ}"
    ends = f"{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}"
    calendar.save_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:dentist-1\r\nDTSTAMP:{stamp}\r\nDTSTART:{stamp}\r\nDTEND:{ends}\r\n"
        "SUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def ours(calendar: Any) -> list[Any]:
    """nurture's events in the calendar, parsed."""
    found = [Calendar.from_ical(e.data) for e in calendar.events()]
    events = [e for c in found for e in c.walk("VEVENT")]
    return [e for e in events if str(e["uid"]).endswith("@nurture")]


@pytest.fixture
def project_with_calendar(run_store, project: Path, coach_calendar: Any) -> dict[str, Any]:
    with (project / "nurture.toml").open("a") as toml:
        toml.write(SETTINGS.format(hours=HOURS, url=coach_calendar.url))
    (project / ".env").write_text(
        "NURTURE_AVAILABILITY__CALDAV__PASSWORD=secret\nNURTURE_AVAILABILITY__SECRET=b\n"
    )
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
    return {"busy": first, "next": second, "calendar": coach_calendar}


def add_lead(run_store, funnel: str, name: str) -> None:
    added = run_store("leads", "add", "-f", funnel, "--name", name, "--email", f"{name}@x.com")
    assert added.exit_code == 0, added.output


def test_check_calendar_lists_the_coach_s_busy_times(run_store, project_with_calendar):
    checked = run_store("appointments", "check-calendar")
    assert checked.exit_code == 0, checked.output
    assert "✓ Coach Kim: 1 busy period in the next 10d" in checked.output
    assert f"{project_with_calendar['busy']:%Y-%m-%d %H:%M}" in checked.stdout


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
    toml = project / "nurture.toml"
    toml.write_text(
        re.sub(
            r'url = "http://127\.0\.0\.1:\d+',
            f'url = "http://127.0.0.1:{free_port()}',
            toml.read_text(),
        )
    )
    add_lead(run_store, "website", "cy")
    assert run_store("run", "--once").exit_code == 0
    assert json.loads(run_store("appointments", "list", "--json").stdout) == []
    logs = json.loads(run_store("logs", "--json").stdout)
    assert any("could not read the coach's calendar" in (row.get("error") or "") for row in logs)
    assert "secret" not in json.dumps(logs)
