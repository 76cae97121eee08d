"""Frequency caps: how many messages a lead may get in a rolling window, and the quiet gap after one.

    caps = Caps.of(messages="2/day, 5/week", sms="1/day", min_gap="4h")
    held = caps.hold(sent, "sms", now)     # None: it may go; else a Hold (until when, and why)

`sent` is what the lead got lately (Sent entries, any sequence): the store's cap ledger
(nurture.store.caps) keeps it per lead, so every daemon on one store counts the same messages.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from nurture.spec.durations import format_duration, parse_duration

CHANNELS = ("sms", "whatsapp", "email")
"""The kinds of message a cap counts (a notification goes to the coach, not the lead)."""
PERIODS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
_CAP = re.compile(r"^\s*(\d+)\s*/\s*(.+?)\s*$")


@dataclass(frozen=True)
class Cap:
    """At most `count` messages in any `window` (rolling); `text` as the user wrote it."""

    count: int
    window: timedelta
    text: str


def parse_caps(text: str) -> tuple[Cap, ...]:
    """`2/day, 5/week` (periods: hour, day, week, or a duration such as 36h or 2w); ValueError else."""
    caps = tuple(_cap(part) for part in text.split(",") if part.strip())
    if not caps:
        raise ValueError(f"{text!r} has no cap: write e.g. '2/day, 5/week'")
    return caps


def _cap(part: str) -> Cap:
    found = _CAP.match(part)
    if not found:
        raise ValueError(f"{part.strip()!r} is not a cap: write a count per period, e.g. '2/day'")
    count, period = int(found[1]), found[2].lower()
    window = PERIODS.get(period.removeprefix("1").strip())
    if window is None:
        try:
            window = parse_duration(period)
        except ValueError:
            names = ", ".join(PERIODS)
            raise ValueError(
                f"{part.strip()!r}: {period!r} is not a period ({names}, or a duration "
                "such as 36h or 2w)"
            ) from None
    if count < 1 or window <= timedelta(0):
        raise ValueError(f"{part.strip()!r}: a cap allows at least one message in a period")
    return Cap(count, window, f"{count}/{found[2].strip()}")


@dataclass(frozen=True)
class Sent:
    """A message a lead got: when, on which channel, and which step of which enrollment sent it."""

    at: datetime
    channel: str
    enrollment: int
    step: str
    sequence: str

    @property
    def by(self) -> str:
        return f"'{self.step}' of {self.sequence}"


@dataclass(frozen=True)
class Hold:
    """A message that must wait: the first moment the caps allow it, and why."""

    until: datetime
    reason: str


@dataclass(frozen=True)
class Caps:
    """The project's caps per lead: on all messages, per channel, and the gap after any message."""

    messages: tuple[Cap, ...] = ()
    channels: dict[str, tuple[Cap, ...]] = field(default_factory=dict)
    min_gap: timedelta | None = None

    @classmethod
    def of(cls, messages: str | None = None, min_gap: str | None = None, **channels: str | None):
        """Caps from their texts (`nurture.toml`'s [caps]); ValueError on a bad one."""
        gap = parse_duration(min_gap) if min_gap else None
        per = {name: parse_caps(text) for name, text in channels.items() if text}
        return cls(parse_caps(messages) if messages else (), per, gap or None)

    def __bool__(self) -> bool:
        return self.any

    @cached_property
    def any(self) -> bool:
        return bool(self.messages or self.channels or self.min_gap)

    @cached_property
    def horizon(self) -> timedelta:
        """How far back a message still counts: the longest window or gap."""
        spans = [cap.window for caps in (self.messages, *self.channels.values()) for cap in caps]
        return max([*spans, self.min_gap or timedelta(0)])

    def counts(self, channel: str | None) -> bool:
        """Whether a message on `channel` is capped (and so counted)."""
        return self.any and channel in CHANNELS

    @cached_property
    def limits(self) -> tuple[tuple[str | None, int, float], ...]:
        """(channel or None for all, count, window in seconds) of every cap (the store's ledger
        decides with them too, nurture.store.caps)."""
        every = [(None, cap.count, cap.window.total_seconds()) for cap in self.messages]
        return (
            *every,
            *((name, cap.count, cap.window.total_seconds())
              for name, caps in self.channels.items() for cap in caps),
        )  # fmt: skip

    def allows(self, sent: Sequence[Sequence[Any]], channel: str, now: float) -> bool:
        """Whether a message on `channel` may go at `now` (seconds since the epoch) if the lead
        got `sent`: entries as the ledger keeps them, [seconds since the epoch, channel, ...].
        What `hold` decides, without its reasons; for the common case, where nothing holds."""
        gap = self.min_gap
        if gap is not None and any(entry[0] > now - gap.total_seconds() for entry in sent):
            return False
        for name, count, window in self.limits:
            if name is not None and name != channel:
                continue
            inside = sum(
                1 for entry in sent if entry[0] > now - window and name in (None, entry[1])
            )
            if inside >= count:
                return False
        return True

    def hold(self, sent: Sequence[Sent], channel: str, now: datetime) -> Hold | None:
        """When a message on `channel` may go if the lead got `sent` (oldest first), or None: now."""
        recent = [entry for entry in sent if entry.at > now - self.horizon]
        waits = [
            *(_wait(cap, "messages", recent, now) for cap in self.messages),
            *(
                _wait(cap, channel, [e for e in recent if e.channel == channel], now)
                for cap in self.channels.get(channel, ())
            ),
            _gap(self.min_gap, recent, now),
        ]
        found = [wait for wait in waits if wait is not None]
        return max(found, key=lambda hold: hold.until) if found else None

    def kept(self, sent: Sequence[Sent], now: datetime) -> list[Sent]:
        """The entries that still count at `now` (the rest can be forgotten)."""
        return [entry for entry in sent if entry.at > now - self.horizon]


def _wait(cap: Cap, scope: str, sent: Sequence[Sent], now: datetime) -> Hold | None:
    """The hold of one cap: the window has `count` messages until its oldest needed one leaves."""
    inside = sorted((entry for entry in sent if entry.at > now - cap.window), key=_when)
    if len(inside) < cap.count:
        return None
    until = inside[len(inside) - cap.count].at + cap.window
    last = inside[-1]
    reason = f"{cap.text} {scope} cap reached by {last.by} at {shown(last.at)}"
    return Hold(until, reason)


def _gap(gap: timedelta | None, sent: Sequence[Sent], now: datetime) -> Hold | None:
    if gap is None or not sent:
        return None
    last = max(sent, key=_when)
    if last.at + gap <= now:
        return None
    reason = f"min_gap {format_duration(gap)} after {last.by} at {shown(last.at)}"
    return Hold(last.at + gap, reason)


def _when(entry: Sent) -> datetime:
    return entry.at


def shown(moment: datetime) -> str:
    """`2026-12-03 09:00 UTC`: a time in a reason."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
