"""When a lead did something, as given for a backfill: `--at WHEN` or an import's `created_at`.

WHEN is ISO 8601 (`2026-03-06T17:00`, `2026-03-06 17:00:00+01:00`, `2026-03-06T16:00Z`, or a
date alone, midnight). A time without an offset is read in the lead's time zone, else the
project's (`timezone` in nurture.toml). A time more than a few minutes ahead of the clock is
refused: a lead cannot have arrived in the future (a clock a little fast may be, though).
"""

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from nurture.errors import NurtureError
from nurture.spec.times import check_time

AHEAD = timedelta(minutes=5)
"""How far past the clock a WHEN may be (a sender's clock running fast)."""
EXAMPLE = "2026-03-06T17:00, or with an offset: 2026-03-06T17:00+01:00"


def happened_at(text: str | None, zone: str | None, now: datetime, what: str = "--at") -> datetime:
    """The moment `text` names, in UTC (`now` when no text is given); NurtureError names `what`."""
    if text is None:
        return now
    moment = moment_in(text, zone, what)
    if moment > now + AHEAD:
        raise NurtureError(
            f"{what} {text!r} is in the future ({moment:%Y-%m-%d %H:%M} UTC, now is "
            f"{now:%Y-%m-%d %H:%M} UTC): give the time it happened"
        )
    return moment


def moment_in(text: str, zone: str | None, what: str) -> datetime:
    """The ISO 8601 time `text` names, in UTC; without an offset it is read in `zone` (else UTC).
    NurtureError names `what`."""
    moment = _parse(text.strip(), what)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(zone or "UTC"))
    return moment.astimezone(UTC)


def _parse(text: str, what: str) -> datetime:
    try:
        return check_time(datetime.fromisoformat(text))
    except ValueError as error:
        reason = str(error) if "out of range" in str(error) else "not an ISO 8601 time"
        raise NurtureError(f"{what} {text!r}: {reason} (e.g. {EXAMPLE})") from None


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
