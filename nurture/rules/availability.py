"""The coach's bookable hours (`[availability]` in nurture.toml) and the free slots they give.

Hours are local times in the coach's zone, so a 09:00 slot stays at 09:00 on both sides of
a daylight-saving change; a local time the change skips (02:30 on a spring-forward night) is
no slot. Everything returned is UTC.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    model_validator,
)

from nurture.spec.durations import format_duration, parse_duration
from nurture.spec.window import FULL_NAMES, WEEKDAYS, TimeZoneName, check_country

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""`30m`, `2h`, `14d` (settings load this module: not the sequence models' Duration)."""
Busy = tuple[datetime, datetime]
"""A busy period, start (inclusive) and end (exclusive), UTC."""
Hours = tuple[time, time]


def _clock(text: str, whole: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{whole!r}: {text.strip()!r} is not a time of day like '09:00'") from None


def _period(text: Any) -> Hours:
    """`09:00-12:30` as (start, end)."""
    if not isinstance(text, str) or text.count("-") != 1:
        raise ValueError(f"{text!r} is not a period of the day like '09:00-17:00'")
    start, end = (_clock(part, text) for part in text.split("-"))
    if start >= end:
        raise ValueError(f"{text!r}: the start must be before the end")
    return start, end


def _periods(value: Any) -> list[Hours]:
    """`09:00-12:00, 14:00-17:00`, or a list of them; `[]` or "" is a day off."""
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list):
        raise ValueError(f"{value!r} is not a list of periods like ['09:00-12:00', '14:00-17:00']")
    periods = sorted(_period(part) for part in parts if not isinstance(part, str) or part.strip())
    for (_, end), (start, _) in zip(periods, periods[1:], strict=False):
        if start < end:
            raise ValueError(f"periods overlap: one ends at {end:%H:%M}, the next starts earlier")
    return periods


def _weekdays(value: Any) -> Any:
    """The week's keys as mon..sun (monday..sunday accepted); an unknown day is an error."""
    if not isinstance(value, dict):
        return value
    days: dict[str, Any] = {}
    for key, periods in value.items():
        name = str(key).strip().lower()
        name = WEEKDAYS[FULL_NAMES.index(name)] if name in FULL_NAMES else name
        if name not in WEEKDAYS:
            raise ValueError(f"{key!r} is not a day of the week (use mon, tue, ... sun)")
        days[name] = periods
    return days


def _shown(periods: list[Hours]) -> list[str]:
    return [f"{start:%H:%M}-{end:%H:%M}" for start, end in periods]


Periods = Annotated[
    list[Hours],
    BeforeValidator(_periods),
    PlainSerializer(_shown, return_type=list[str], when_used="json"),
]
Week = Annotated[dict[str, Periods], BeforeValidator(_weekdays)]


class OAuthSettings(BaseModel):
    """`[availability.caldav.oauth]`: Bearer tokens from a refresh token (Google's CalDAV)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, description="The OAuth client's ID.")
    client_secret: SecretStr | None = Field(
        None, description="NURTURE_AVAILABILITY__CALDAV__OAUTH__CLIENT_SECRET, never in the toml."
    )
    refresh_token: SecretStr | None = Field(
        None,
        description="NURTURE_AVAILABILITY__CALDAV__OAUTH__REFRESH_TOKEN, never in the toml.",
    )
    token_url: str = Field(
        "https://oauth2.googleapis.com/token",
        pattern=r"^https?://",
        description="Where access tokens are granted (default: Google's).",
    )


class CalDavSettings(BaseModel):
    """The coach's calendar over CalDAV: its busy times are never offered, bookings land in it."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        pattern=r"^https?://", description="The calendar's (or the account's) CalDAV URL."
    )
    username: str | None = None
    password: SecretStr | None = Field(
        None, description="In .env as NURTURE_AVAILABILITY__CALDAV__PASSWORD, never in the toml."
    )
    calendar: str | None = Field(
        None, description="The calendar's name, when the URL is the account's, not a calendar's."
    )
    timeout: float = Field(10.0, gt=0, le=120, description="Seconds per CalDAV request.")
    oauth: OAuthSettings | None = Field(
        None, description="OAuth 2.0 instead of a password (Google): see OAuthSettings."
    )

    @model_validator(mode="after")
    def _one_login(self) -> Self:
        if self.oauth is not None and (self.username or self.password):
            raise ValueError(
                "oauth: give [availability.caldav.oauth] or a username/password, not both"
            )
        return self


class Availability(BaseModel):
    """`[availability]`: when the coach takes calls, in the coach's time zone."""

    model_config = ConfigDict(extra="forbid")

    timezone: TimeZoneName | None = Field(
        None, description="The coach's time zone (default: the project's `timezone`)."
    )
    hours: Week = Field(
        default_factory=dict,
        description="Bookable hours per weekday: mon = ['09:00-12:00', '14:00-17:00'].",
    )
    slot: Duration = Field(timedelta(minutes=30), description="The length of a call.")
    buffer: Duration = Field(timedelta(0), description="Kept free between two calls.")
    notice: Duration = Field(timedelta(hours=12), description="No call sooner than this from now.")
    horizon: Duration = Field(timedelta(days=14), description="No call later than this from now.")
    holidays: Annotated[str, AfterValidator(check_country)] | None = Field(
        None, description="Country code whose public holidays are days off, e.g. 'US', 'GB-ENG'."
    )
    secret: SecretStr | None = Field(
        None,
        description="Signs booking links (NURTURE_AVAILABILITY__SECRET; default: the "
        "unsubscribe secret).",
    )
    link_valid: Duration = Field(
        timedelta(days=30), description="How long a booking link can book, from when it was sent."
    )
    caldav: CalDavSettings | None = None

    @model_validator(mode="after")
    def _bookable(self) -> Self:
        if not any(self.hours.values()):
            raise ValueError(
                "hours: give the bookable hours of at least one day, e.g. mon = '09:00-17:00'"
            )
        if self.slot <= timedelta(0):
            raise ValueError("slot: a call lasts some time, e.g. '30m'")
        if self.horizon <= self.notice:
            raise ValueError(f"horizon ({self.horizon}) must be longer than notice ({self.notice})")
        return self

    def zone(self, default: str) -> ZoneInfo:
        return ZoneInfo(self.timezone or default)


def free_slots(
    availability: Availability,
    default_zone: str,
    now: datetime,
    busy: Iterable[Busy] = (),
    earliest: datetime | None = None,
) -> list[datetime]:
    """The start (UTC) of every free slot from `now` + notice (or `earliest`, if later) to
    `now` + horizon, none overlapping a busy period or its buffer; soonest first."""
    start = max(now + availability.notice, earliest or now)
    end = now + availability.horizon
    zone = availability.zone(default_zone)
    taken = sorted(busy)
    found = []
    day = start.astimezone(zone).date()
    while day <= end.astimezone(zone).date():
        for slot in _day_slots(availability, zone, day):
            if (
                start <= slot
                and slot + availability.slot <= end
                and _free(availability, slot, taken)
            ):
                found.append(slot)
        day += timedelta(days=1)
    return found


def _day_slots(availability: Availability, zone: ZoneInfo, day: date) -> list[datetime]:
    """The slots of a day's bookable hours, buffer between them (none on a holiday)."""
    from nurture.rules.schedule import holiday_name  # the sequence models: not for settings

    periods = availability.hours.get(WEEKDAYS[day.weekday()], [])
    if not periods or holiday_name(availability.holidays, day):
        return []
    step, length = availability.slot + availability.buffer, availability.slot
    slots = []
    for opens, closes in periods:
        local, last = datetime.combine(day, opens), datetime.combine(day, closes)
        while local + length <= last:
            instant = _instant(local, zone)
            if instant is not None:
                slots.append(instant)
            local += step
    return slots


def _instant(local: datetime, zone: ZoneInfo) -> datetime | None:
    """A local wall-clock time as UTC; None when the zone skips it (a DST gap)."""
    instant = local.replace(tzinfo=zone).astimezone(UTC)
    return instant if instant.astimezone(zone).replace(tzinfo=None) == local else None


def _free(availability: Availability, slot: datetime, busy: list[Busy]) -> bool:
    """Whether the slot, with the buffer either side, overlaps no busy period."""
    before, after = slot - availability.buffer, slot + availability.slot + availability.buffer
    return not any(start < after and before < end for start, end in busy)


def slot_end(availability: Availability, start: datetime) -> datetime:
    return start + availability.slot
