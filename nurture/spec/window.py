"""The send window: days of the week and hours in the lead's time zone, with holidays by country."""

import json
from datetime import time
from functools import cache
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, model_validator

from nurture.spec.base import NonEmpty, SpecModel

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _weekday(value: Any) -> str:
    text = str(value).strip().lower()
    if text in FULL_NAMES:
        return WEEKDAYS[FULL_NAMES.index(text)]
    if text not in WEEKDAYS:
        raise ValueError(
            f"{value!r} is not a day of the week (use mon, tue, ... sun, or a range mon-fri)"
        )
    return text


def _days(value: Any) -> Any:
    """`mon-fri`, `mon, wed` or a list; ranges are expanded."""
    parts = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(parts, list):
        return value
    return [day for part in parts for day in _expand(part)]


def _expand(part: Any) -> list[Any]:
    if not isinstance(part, str) or "-" not in part:
        return [part]
    first, _, last = part.partition("-")
    start, stop = WEEKDAYS.index(_weekday(first)), WEEKDAYS.index(_weekday(last))
    if stop < start:
        raise ValueError(f"{part!r}: a range runs forward within a week, like mon-fri")
    return list(WEEKDAYS[start : stop + 1])


def _clock_time(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"{value} is a number; write a time of day in quotes, like '09:00'")
    return value


def _local_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("write a local time without a zone, like '09:00'; the zone is the lead's")
    return value


def check_time_zone(name: str) -> str:
    """The name itself when it is an IANA time zone, else ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Europe' is a folder of zones
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. 'Europe/Madrid')") from None
    return name


HOLIDAY_COUNTRIES = Path(__file__).with_name("holiday_countries.json")
"""The countries `holidays` has calendars for, with their subdivisions (scripts/holiday_countries.py)."""


@cache
def _holiday_countries() -> dict[str, list[str]]:
    """Saved for the installed `holidays` (importing it costs validate a fifth of a second)."""
    saved = json.loads(HOLIDAY_COUNTRIES.read_text(encoding="utf-8"))
    if saved["holidays"] == _holidays_version():
        return saved["countries"]
    import holidays

    return holidays.list_supported_countries()


def _holidays_version() -> str:
    """The installed `holidays`' version, from its `holidays-X.dist-info` folder (PEP 627) where
    there is one: reading its metadata costs every start-up a scan of the site-packages."""
    spec = find_spec("holidays")
    if spec is not None and spec.origin is not None:
        found = sorted(Path(spec.origin).parents[1].glob("holidays-*.dist-info"))
        if len(found) == 1:
            return found[0].name.removeprefix("holidays-").removesuffix(".dist-info")
    return version("holidays")


def check_country(code: str) -> str:
    """`US`, or a country with one of its subdivisions, `GB-ENG` (England's bank holidays,
    which the UK-wide calendar lacks), as a holiday calendar knows them; else ValueError."""
    country, _, part = code.strip().partition("-")
    country = country.upper()
    if country not in _holiday_countries():
        raise ValueError(
            f"no holiday calendar for country code {code!r} (use e.g. 'US', 'ES', 'GB-ENG')"
        )
    if not part:
        return country
    parts = _holiday_countries()[country]
    found = next((p for p in parts if p.casefold() == part.strip().casefold()), None)
    if found is None:
        raise ValueError(
            f"{country} has no subdivision {part!r} with its own holidays (one of "
            f"{', '.join(parts) or 'none'})"
        )
    return f"{country}-{found}"


TimeZoneName = Annotated[str, AfterValidator(check_time_zone)]
CLOCK_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$"
ClockTime = Annotated[
    time,
    BeforeValidator(_clock_time),
    AfterValidator(_local_time),
    # not `format: time`: RFC 3339 wants an offset, and this is a zoneless "09:00" (out: "09:00:00")
    WithJsonSchema({"type": "string", "pattern": CLOCK_PATTERN, "examples": ["09:00", "18:30"]}),
]


class SendWindow(SpecModel):
    """Messages go out only on these days between start and end, local time; else at the next opening."""

    days: Annotated[
        list[Annotated[str, BeforeValidator(_weekday)]],
        BeforeValidator(
            _days, json_schema_input_type=NonEmpty | Annotated[list[NonEmpty], Field(min_length=1)]
        ),
    ] = Field(default_factory=lambda: list(WEEKDAYS[:5]), min_length=1)
    start: ClockTime = time(9, 0)
    end: ClockTime = time(18, 0)
    timezone: TimeZoneName | None = Field(None, description="Used when the lead has no time zone.")
    holidays: Annotated[str, AfterValidator(check_country)] | None = Field(
        None,
        description="Country code whose public holidays are closed, e.g. 'US', or a country "
        "and subdivision, e.g. 'GB-ENG', 'US-CA', 'AU-NSW'.",
    )

    @model_validator(mode="after")
    def _opens(self) -> Self:
        if self.start >= self.end:
            raise ValueError(f"start ({self.start:%H:%M}) must be before end ({self.end:%H:%M})")
        return self
