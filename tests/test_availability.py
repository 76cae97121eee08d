"""The coach's availability in nurture.toml, and the free slots it gives (DST included)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nurture.errors import ConfigError
from nurture.rules.availability import Availability, free_slots
from nurture.settings import load_settings

MADRID = "Europe/Madrid"


def week(**fields: object) -> Availability:
    hours = fields.pop("hours", {"mon": "09:00-12:00", "tue": ["09:00-10:00", "15:00-16:00"]})
    return Availability.model_validate({"hours": hours, "timezone": MADRID, **fields})


def local(slots: list[datetime], zone: str = MADRID) -> list[str]:
    from zoneinfo import ZoneInfo

    return [f"{slot.astimezone(ZoneInfo(zone)):%a %d %H:%M}" for slot in slots]


def test_slots_fill_the_weekly_hours_in_the_coachs_zone_with_the_buffer_between():
    availability = week(slot="45m", buffer="15m", notice="0m", horizon="3d")
    now = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)  # Mon 7 Dec, 00:00 in Madrid
    slots = free_slots(availability, "UTC", now)
    assert local(slots) == [
        "Mon 07 09:00",
        "Mon 07 10:00",
        "Mon 07 11:00",  # 11:00-11:45 ends before 12:00; 12:00 would not
        "Tue 08 09:00",
        "Tue 08 15:00",
    ]
    assert slots[0] == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # CET is UTC+1


def test_notice_horizon_and_busy_times_are_never_offered():
    availability = week(slot="1h", buffer="30m", notice="2h", horizon="1d")
    now = datetime(2026, 12, 7, 7, 30, tzinfo=UTC)  # Mon 08:30 Madrid: notice until 10:30
    busy = [(datetime(2026, 12, 8, 8, 45, tzinfo=UTC), datetime(2026, 12, 8, 9, 0, tzinfo=UTC))]
    slots = free_slots(availability, "UTC", now, busy)
    # Mon: 09:00 and 10:30 are before the notice ends? 10:30 is not: it is offered.
    assert local(slots) == ["Mon 07 10:30"]  # Tue 09:00 is within the horizon but busy
    later = free_slots(availability, "UTC", now, earliest=now + timedelta(hours=5))
    assert later == []


def test_a_holiday_is_a_day_off():
    availability = week(notice="0m", horizon="2d", holidays="ES")
    now = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)  # Tue 8 Dec: Inmaculada Concepción
    assert {day.split()[0] for day in local(free_slots(availability, "UTC", now))} == {"Mon"}


def test_hours_keep_to_the_local_clock_across_a_daylight_saving_change():
    availability = week(hours={"sat": "09:00-10:00", "sun": "09:00-10:00"}, notice="0m")
    now = datetime(2026, 10, 23, tzinfo=UTC)  # Madrid leaves summer time on Sun 25 Oct
    slots = free_slots(availability, "UTC", now)[:4]
    assert local(slots) == ["Sat 24 09:00", "Sat 24 09:30", "Sun 25 09:00", "Sun 25 09:30"]
    assert [slot.hour for slot in slots] == [7, 7, 8, 8]  # UTC+2, then UTC+1


def test_a_local_time_the_change_skips_is_no_slot():
    night = week(hours={"sun": "01:30-03:30"}, notice="0m", slot="30m")
    now = datetime(2026, 3, 28, tzinfo=UTC)  # Sun 29 Mar: 02:00 jumps to 03:00 in Madrid
    assert local(free_slots(night, "UTC", now)[:3]) == [
        "Sun 29 01:30",
        "Sun 29 03:00",
        "Sun 05 01:30",
    ]


def test_the_zone_defaults_to_the_projects():
    availability = Availability.model_validate({"hours": {"mon": "09:00-09:30"}, "notice": 0})
    now = datetime(2026, 12, 6, tzinfo=UTC)
    assert free_slots(availability, "America/New_York", now)[0].hour == 14  # 09:00 EST


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[availability]\nslot = "30m"\n', "availability: .*hours: give the bookable hours"),
        ('[availability.hours]\nmonday = "9-17"\n', "availability.hours.mon: .*'9' is not a time"),
        ('[availability.hours]\nfunday = "09:00-17:00"\n', "'funday' is not a day of the week"),
        (
            '[availability.hours]\nmon = ["09:00-12:00", "11:00-13:00"]\n',
            "availability.hours.mon: .*periods overlap",
        ),
        (
            '[availability]\nbuffer = "soon"\n[availability.hours]\nmon = "09:00-10:00"\n',
            "availability.buffer: .*'soon' is not a duration",
        ),
        (
            '[availability]\nholidays = "XX"\n[availability.hours]\nmon = "09:00-10:00"\n',
            "availability.holidays: .*no holiday calendar",
        ),
        (
            '[availability]\nhorizon = "1h"\n[availability.hours]\nmon = "09:00-10:00"\n',
            "horizon .* must be longer than notice",
        ),
        ('[availability]\nslots = "1h"\n', "availability.slots: .*xtra"),
    ],
)
def test_a_wrong_availability_names_its_key(tmp_path: Path, toml: str, message: str):
    (tmp_path / "nurture.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path)


def test_the_calendar_password_is_a_secret(tmp_path: Path):
    (tmp_path / "nurture.toml").write_text(
        '[availability.hours]\nmon = "09:00-10:00"\n'
        '[availability.caldav]\nurl = "https://cal.example.com/"\npassword = "hunter2"\n'
    )
    with pytest.raises(ConfigError, match="NURTURE_AVAILABILITY__CALDAV__PASSWORD") as raised:
        load_settings(tmp_path)
    assert "hunter2" not in str(raised.value)


def test_validate_says_an_auto_booking_needs_availability(run, project: Path):
    from builders import sequence, step, write

    book = step("Book", "schedule_appointment")
    book["action_config"]["mode"] = "auto"
    write(project, "calls.yaml", sequence("Calls", book))
    result = run("validate")
    assert result.exit_code == 1
    assert "mode 'auto' books from the coach's hours: add [availability]" in result.output
    with (project / "nurture.toml").open("a") as toml:
        toml.write('[availability.hours]\nmon = "09:00-10:00"\n')
    assert run("validate").exit_code == 0


def test_plan_and_apply_refuse_an_auto_booking_without_availability(run, project: Path):
    from builders import sequence, step, write

    book = step("Book", "schedule_appointment")
    book["action_config"]["mode"] = "auto"
    write(project, "calls.yaml", sequence("Calls", book))
    said = "mode 'auto' books from the coach's hours: add [availability]"
    for command in (("plan",), ("apply", "--yes")):
        result = run(*command)
        assert result.exit_code == 1 and said in result.output, result.output
    planned = run("plan", "--json")
    (problem,) = json.loads(planned.stdout)["diagnostics"]
    assert said in problem["message"] and problem["line"] > 1
    with (project / "nurture.toml").open("a") as toml:
        toml.write('[availability.hours]\nmon = "09:00-10:00"\n')
    assert run("plan").exit_code == 0


def test_validate_reports_a_wrong_availability(run, project: Path):
    with (project / "nurture.toml").open("a") as toml:
        toml.write('[availability.hours]\nmon = "9am-5pm"\n')
    result = run("validate")
    assert result.exit_code == 1 and "availability.hours.mon" in result.output
