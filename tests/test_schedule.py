"""When a step runs: delay, then the send window in the lead's time zone, then holidays."""

from datetime import UTC, datetime

import pytest

from nurture.rules.schedule import fit_window, step_due
from nurture.spec.models import SequenceSpec
from nurture.spec.window import SendWindow

WEEKDAYS_9_TO_6 = SendWindow(days="mon-fri", start="09:00", end="18:00", holidays="US")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_inside_the_window_nothing_moves():
    slot = fit_window(utc("2026-11-25T15:00:00Z"), WEEKDAYS_9_TO_6, None, "America/New_York")
    assert slot.at == utc("2026-11-25T15:00:00Z") and slot.reasons == ()


def test_before_opening_waits_for_the_same_morning_in_the_leads_zone():
    slot = fit_window(utc("2026-11-25T08:00:00Z"), WEEKDAYS_9_TO_6, "America/New_York", "UTC")
    assert slot.at == utc("2026-11-25T09:00:00-05:00")
    assert slot.reasons == ("03:00 is before the send window opens (09:00)",)


def test_after_closing_skips_the_holiday_and_the_weekend():
    slot = fit_window(utc("2026-12-24T18:30:00-05:00"), WEEKDAYS_9_TO_6, "America/New_York", "UTC")
    assert slot.at == utc("2026-12-28T09:00:00-05:00")
    assert slot.reasons[1] == "2026-12-25 is a holiday in US (Christmas Day)"
    assert slot.reasons[2].startswith("Sat 2026-12-26 is outside the send window days")


def test_the_window_follows_daylight_saving_time():
    slot = fit_window(utc("2026-03-09T01:00:00Z"), WEEKDAYS_9_TO_6, "America/New_York", "UTC")
    assert slot.at == utc("2026-03-09T09:00:00-04:00")  # EDT began on March 8


def test_the_windows_zone_serves_leads_without_one():
    window = SendWindow(days="mon-sun", start="09:00", end="18:00", timezone="Asia/Tokyo")
    slot = fit_window(utc("2026-11-25T12:00:00Z"), window, None, "UTC")  # 21:00 in Tokyo
    assert slot.at == utc("2026-11-26T09:00:00+09:00")


def test_only_messages_wait_for_the_window():
    spec = SequenceSpec.model_validate(
        {
            "name": "S",
            "send_window": {"days": "mon-fri", "start": "09:00", "end": "18:00"},
            "steps": [
                {
                    "name": "sms",
                    "action_type": "send_sms",
                    "action_config": {"message": "hi"},
                    "delay_hours": 2,
                },
                {
                    "name": "task",
                    "action_type": "create_task",
                    "action_config": {"title": "t"},
                    "delay_hours": 2,
                },
            ],
        }
    )
    saturday_night = utc("2026-11-28T22:00:00Z")
    assert step_due(saturday_night, spec.steps[0], spec, None, "UTC").at == utc(
        "2026-11-30T09:00:00Z"
    )
    assert step_due(saturday_night, spec.steps[1], spec, None, "UTC").at == utc(
        "2026-11-29T00:00:00Z"
    )


def test_a_subdivision_closes_its_own_holidays_too():
    easter_monday = utc("2025-04-21T10:00:00+01:00")
    uk = SendWindow(days="mon-fri", start="09:00", end="18:00", holidays="gb")
    england = SendWindow(days="mon-fri", start="09:00", end="18:00", holidays="gb-eng")
    assert england.holidays == "GB-ENG"
    assert fit_window(easter_monday, uk, "Europe/London", "UTC").at == easter_monday
    slot = fit_window(easter_monday, england, "Europe/London", "UTC")
    assert slot.at == utc("2025-04-22T09:00:00+01:00")
    assert slot.reasons[0] == "2025-04-21 is a holiday in GB-ENG (Easter Monday)"
    with pytest.raises(
        ValueError, match=r"GB has no subdivision 'XX' .*\(one of ENG, NIR, SCT, WLS\)"
    ):
        SendWindow(holidays="GB-XX")


def test_the_longest_delay_from_the_last_year_allowed_lands_in_the_window():
    spec = SequenceSpec.model_validate(
        {
            "name": "S",
            "send_window": {"days": "mon-fri", "start": "09:00", "end": "18:00"},
            "steps": [
                {
                    "name": "sms",
                    "action_type": "send_sms",
                    "action_config": {"message": "hi"},
                    "delay_days": 3649,
                    "delay_hours": 23,
                    "delay_minutes": 59,
                },
            ],
        }
    )
    last_night = utc("2999-12-31T23:59:00Z")  # the latest `run --now` a user may give
    slot = step_due(last_night, spec.steps[0], spec, "Pacific/Kiritimati", "UTC")
    assert slot.at == utc("3010-01-01T09:00:00+14:00")  # Saturday 13:59 there: Monday morning
    assert [reason[:3] for reason in slot.reasons] == ["Sat", "Sun"]
