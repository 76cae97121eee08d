"""A lead's engagement as conditions and scores see it: its events, and the score they make.

The engagement score weighs each event by its kind and halves it every half-life:

    score = Σ weight(kind) × 0.5 ^ (age / half_life)

With the default weights (clicked 3, replied 5, opened 1, read 1, converted 10) and a
half-life of 14 days, a click today counts 3, a click two weeks ago 1.5, four weeks 0.75.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

WEIGHTS = {
    "delivered": 0.0,
    "read": 1.0,
    "opened": 1.0,
    "clicked": 3.0,
    "replied": 5.0,
    "converted": 10.0,
    "bounced": 0.0,
}
HALF_LIFE = timedelta(days=14)
ENGAGED = ("read", "opened", "clicked", "replied", "converted")
"""Kinds that show a lead engaged (a delivery or a bounce is the provider's news, not the lead's)."""
STEP_KINDS = {"clicked": "clicked", "opened": "opened", "delivered": "delivered", "read": "read"}
"""Step conditions naming steps (`clicked: [welcome]`), and the event kind each looks for."""
WAITED = {"reply": "replied", "click": "clicked", "convert": "converted"}
"""What a `wait_for` waits for, and the event kind that ends the wait."""


@dataclass(frozen=True)
class Event:
    """One engagement event as rules read it."""

    kind: str
    at: datetime
    step_id: str | None = None
    enrollment_id: int | None = None


@dataclass(frozen=True)
class Scoring:
    """How events add up to a score: a weight per kind and the half-life of every event."""

    weights: dict[str, float] = field(default_factory=lambda: dict(WEIGHTS))
    half_life: timedelta = HALF_LIFE


def score(events: Iterable[Event], now: datetime, scoring: Scoring | None = None) -> float:
    """The engagement score at `now` (events after `now` do not count yet), to 0.1."""
    scoring = scoring or Scoring()
    half_life = scoring.half_life.total_seconds()
    total = 0.0
    for event in events:
        age = (now - event.at).total_seconds()
        if age >= 0:
            total += scoring.weights.get(event.kind, 0.0) * 0.5 ** (age / half_life)
    return round(total, 1)


@dataclass(frozen=True)
class Engagement:
    """A lead's events as one enrollment's step conditions see them at `now`."""

    events: tuple[Event, ...] = ()
    now: datetime | None = None
    enrollment_id: int | None = None
    since: datetime | None = None
    """When the enrollment began: replies since then count."""
    scoring: Scoring = field(default_factory=Scoring)

    def steps_with(self, kind: str) -> list[str]:
        """Steps of this enrollment with an event of `kind`, in the order they came."""
        found = [
            e.step_id
            for e in self._past()
            if e.kind == kind and e.step_id and e.enrollment_id == self.enrollment_id
        ]
        return list(dict.fromkeys(found))

    def replied(self) -> bool:
        """Whether the lead wrote in since the enrollment began."""
        return any(
            e.kind == "replied" and (self.since is None or e.at >= self.since) for e in self._past()
        )

    def came(self, kind: str, since: datetime) -> Event | None:
        """The first event of `kind` at or after `since` (and not after now), or None."""
        return next((e for e in self._past() if e.kind == kind and e.at >= since), None)

    def score(self) -> float:
        return score(self.events, self.now, self.scoring) if self.now else 0.0

    def _past(self) -> list[Event]:
        return [e for e in self.events if self.now is None or e.at <= self.now]
