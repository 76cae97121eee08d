"""When a step runs: its delay, then the send window in the lead's time zone, then holidays."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from nurture.spec.actions import MESSAGE_ACTIONS
from nurture.spec.models import SequenceSpec
from nurture.spec.steps import AnyStep
from nurture.spec.window import WEEKDAYS, SendWindow

MAX_DAYS_AHEAD = 400  # a window that never opens is a validation error; this only bounds the loop


@dataclass(frozen=True)
class Slot:
    """A due time (UTC) and, when the window or a holiday moved it, why."""

    at: datetime
    reasons: tuple[str, ...] = ()


@lru_cache(maxsize=256)
def _holidays(calendar: str, year: int) -> dict[date, str]:
    """The holidays of `US` or `GB-ENG` (a country and one of its subdivisions)."""
    import holidays

    country, _, subdivision = calendar.partition("-")
    return dict(holidays.country_holidays(country, subdiv=subdivision or None, years=year))


def holiday_name(country: str | None, day: date) -> str | None:
    return _holidays(country, day.year).get(day) if country else None


def fit_window(
    due: datetime, window: SendWindow | None, lead_zone: str | None, default_zone: str
) -> Slot:
    """The first moment at or after `due` inside the window, in the lead's time zone."""
    if window is None:
        return Slot(due)
    tz = ZoneInfo(window_zone(window, lead_zone, default_zone))
    local = due.astimezone(tz)
    reasons: list[str] = []
    for _ in range(MAX_DAYS_AHEAD):
        closed = _closed(local, window)
        if closed is None:
            return Slot(local.astimezone(UTC), tuple(reasons))
        reason, opens_today = closed
        reasons.append(reason)
        local = _next_start(local, window, tz, same_day=opens_today)
    raise ValueError("the send window never opens")


def window_zone(window: SendWindow | None, lead_zone: str | None, default: str = "UTC") -> str:
    """The lead's zone, else the window's default zone, else the project's."""
    return lead_zone or (window.timezone if window else None) or default


def _closed(local: datetime, window: SendWindow) -> tuple[str, bool] | None:
    """Why the window is closed at `local` and whether it still opens that day; None when open."""
    day = WEEKDAYS[local.weekday()]
    if day not in window.days:
        return (
            f"{local:%a %Y-%m-%d} is outside the send window days ({', '.join(window.days)})",
            False,
        )
    holiday = holiday_name(window.holidays, local.date())
    if holiday:
        return f"{local:%Y-%m-%d} is a holiday in {window.holidays} ({holiday})", False
    if local.time() < window.start:
        return f"{local:%H:%M} is before the send window opens ({window.start:%H:%M})", True
    if local.time() >= window.end:
        return f"{local:%H:%M} is after the send window closes ({window.end:%H:%M})", False
    return None


def _next_start(local: datetime, window: SendWindow, tz: ZoneInfo, *, same_day: bool) -> datetime:
    day = local.date() if same_day else local.date() + timedelta(days=1)
    naive = datetime.combine(day, window.start)
    # Round-trip through UTC so a start inside a DST gap lands on a real instant.
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


def step_due(
    after: datetime, step: AnyStep, spec: SequenceSpec, lead_zone: str | None, default_zone: str
) -> Slot:
    """When `step` runs if the previous one ran at `after`: its delay, then (messages) the send
    window; a wait for an event, at the latest its timeout later (the event makes it due sooner)."""
    due = after + step.delay
    wait_for = step.field_value("wait_for")
    if wait_for is not None:
        return Slot(due + wait_for.timeout)
    if step.action_type not in MESSAGE_ACTIONS:
        return Slot(due)
    return fit_window(due, spec.send_window, lead_zone, default_zone)
