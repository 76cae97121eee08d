"""The time window figures cover: `--since` and `--until` as durations or dates, as SQL.

Below the engine and the insights alike: `nurture enrollments settle` picks held sends by it
as `nurture stats` picks figures.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, true

from nurture.errors import BadWindow
from nurture.spec.durations import parse_duration
from nurture.spec.times import check_span, check_time


@dataclass(frozen=True)
class Window:
    """The time range the figures cover; None leaves that end open."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise BadWindow(
                f"since ({self.since:%Y-%m-%d %H:%M} UTC) is later than until "
                f"({self.until:%Y-%m-%d %H:%M} UTC): no time is in between"
            )

    @classmethod
    def parse(
        cls, since: str | None, until: str | None, now: datetime, prefix: str = "--"
    ) -> "Window":
        """The window `--since` and `--until` give (`prefix` "" names query parameters)."""
        return cls(
            parse_when(since, now, f"{prefix}since"), parse_when(until, now, f"{prefix}until")
        )

    def of(self, column: Any) -> ColumnElement[bool]:
        return within(column, self.since, self.until)


def parse_when(text: str | None, now: datetime, option: str = "--since") -> datetime | None:
    """`7d`, `12h`, `2w` (that long before now), a date `2026-11-01` or an ISO time (UTC)."""
    if text is None:
        return None
    try:
        span = parse_duration(text)
    except ValueError:
        return _moment(text, option)
    try:
        return now - check_span(span)
    except ValueError as error:
        raise BadWindow(f"{option} {text!r}: {error}") from None


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadWindow(
            f"{option} {text!r}: use a duration (7d, 12h, 2w) or a date (2026-11-01)"
        ) from None
    try:
        check_time(moment)  # before astimezone: 0001-01-01 with an offset overflows
    except ValueError as error:
        raise BadWindow(f"{option} {error}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def within(column: Any, since: Any, until: Any) -> ColumnElement[bool]:
    """`since <= column < until`, either end open when None."""
    parts = [true()]
    if since is not None:
        parts.append(column >= since)
    if until is not None:
        parts.append(column < until)
    return and_(*parts)
