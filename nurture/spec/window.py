"""The send window: days of the week and hours in the lead's time zone, with holidays by country."""

from datetime import time
from functools import cache
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from nurture.spec.base import SpecModel

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _weekday(value: Any) -> str:
    text = str(value).strip().lower()[:3]
    if text not in WEEKDAYS:
        raise ValueError(f"{value!r} is not a day of the week (use mon, tue, ... sun)")
    return text


def _days(value: Any) -> Any:
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return value


def _clock_time(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"{value} is a number; write a time of day in quotes, like '09:00'")
    return value


def check_time_zone(name: str) -> str:
    """The name itself when it is an IANA time zone, else ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. 'Europe/Madrid')") from None
    return name


@cache
def _holiday_countries() -> frozenset[str]:
    import holidays

    return frozenset(holidays.list_supported_countries())


def check_country(code: str) -> str:
    """An upper-case country code that has a holiday calendar, else ValueError."""
    upper = code.strip().upper()
    if upper not in _holiday_countries():
        raise ValueError(f"no holiday calendar for country code {code!r} (use e.g. 'US', 'ES', 'GB')")
    return upper


TimeZoneName = Annotated[str, AfterValidator(check_time_zone)]
ClockTime = Annotated[time, BeforeValidator(_clock_time)]


class SendWindow(SpecModel):
    """Messages go out only on these days between start and end, local time; else at the next opening."""

    days: Annotated[list[Annotated[str, BeforeValidator(_weekday)]], BeforeValidator(_days)] = Field(
        default_factory=lambda: list(WEEKDAYS[:5]), min_length=1
    )
    start: ClockTime = time(9, 0)
    end: ClockTime = time(18, 0)
    timezone: TimeZoneName | None = Field(None, description="Used when the lead has no time zone.")
    holidays: Annotated[str, AfterValidator(check_country)] | None = Field(
        None, description="Country code whose public holidays are closed, e.g. 'US'."
    )

    @model_validator(mode="after")
    def _opens(self) -> Self:
        if self.start >= self.end:
            raise ValueError(f"start ({self.start:%H:%M}) must be before end ({self.end:%H:%M})")
        return self
