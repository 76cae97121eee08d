"""Booking links: `{{ booking_link }}` in a message, `/book/{token}` on `nurture serve`.

A token names an enrollment and when it was issued, signed (HMAC-SHA256, itsdangerous)
with `[availability] secret` (or the unsubscribe secret): unguessable, and a forged or cut
token is refused. It books for `link_valid` after it was issued, and the page lets the lead
reschedule or cancel with the same link.
"""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer

from nurture.errors import ExpiredLink, InvalidToken
from nurture.rules.availability import Availability
from nurture.rules.matching import Check

SALT = "nurture.booking"
FEED_SALT = "nurture.calendar-feed"


@dataclass(frozen=True)
class Booking:
    """What booking needs: the coach's availability, the project's zone, the links' secret and
    the page's URL (`{token}` in it), when `nurture serve` has a public URL."""

    availability: Availability
    default_zone: str = "UTC"
    secret: str | None = None
    url: str | None = None
    coach: str = "coach"

    def feed_url(self) -> str:
        """The coach's private calendar feed on `nurture serve`; ValueError when unconfigured."""
        if not self.secret or not self.url:
            raise ValueError(
                "the feed needs [api] public_url and a secret (NURTURE_AVAILABILITY__SECRET)"
            )
        base = self.url.removesuffix("/book/{token}")
        return f"{base}/calendar/{feed_token(self.secret, self.coach)}.ics"

    def link(self, enrollment_id: int, now: datetime) -> str:
        """The booking page of an enrollment; ValueError (a template error) when unconfigured."""
        if not self.secret or not self.url:
            raise ValueError(
                "booking_link needs [api] public_url and a secret "
                "(NURTURE_AVAILABILITY__SECRET or NURTURE_UNSUBSCRIBE__SECRET)"
            )
        return self.url.replace("{token}", make_token(self.secret, enrollment_id, now))

    @property
    def zone(self) -> str:
        return self.availability.timezone or self.default_zone


def make_token(secret: str, enrollment_id: int, now: datetime) -> str:
    return URLSafeSerializer(secret, salt=SALT).dumps([enrollment_id, int(now.timestamp())])


def read_token(secret: str, token: str) -> tuple[int, datetime]:
    """The enrollment of a token and when it was issued; InvalidToken when forged or cut."""
    try:
        enrollment_id, issued = URLSafeSerializer(secret, salt=SALT).loads(token)
    except (BadSignature, TypeError, ValueError):
        raise InvalidToken(
            "not a booking link of this project (it may have been cut short)"
        ) from None
    if not isinstance(enrollment_id, int) or not isinstance(issued, int):
        raise InvalidToken("not a booking link of this project")
    return enrollment_id, datetime.fromtimestamp(issued, UTC)


def check_fresh(issued: datetime, now: datetime, valid: timedelta) -> None:
    """ExpiredLink when a link is older than `valid` (a booked call keeps its link until then)."""
    if now - issued > valid:
        raise ExpiredLink("this booking link has expired")


def feed_token(secret: str, coach: str) -> str:
    """The private token of the coach's calendar feed (a new secret makes a new one)."""
    return URLSafeSerializer(secret, salt=FEED_SALT).dumps(coach)


def read_feed_token(secret: str, token: str) -> str:
    """The coach a feed token names; InvalidToken when it is not one of ours."""
    try:
        coach = URLSafeSerializer(secret, salt=FEED_SALT).loads(token)
    except (BadSignature, TypeError, ValueError):
        raise InvalidToken("not a calendar feed of this project") from None
    if not isinstance(coach, str):
        raise InvalidToken("not a calendar feed of this project")
    return coach


def form_key(secret: str, token: str) -> str:
    """The hidden value a booking form posts back: proof the form came from our page."""
    return hmac.new(secret.encode(), f"form:{token}".encode(), hashlib.sha256).hexdigest()[:32]


def appointment_check(conditions: Any, status: str | None) -> Check | None:
    """A step's `appointment:` condition against its enrollment's appointment (None: none)."""
    wanted = getattr(conditions, "appointment", None)
    if wanted is None:
        return None
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    actual = status if status in (*wanted, "booked", "attended", "no_show", "cancelled") else None
    actual = actual or ("offered" if status == "offered" else "none")
    return Check("appointment", " or ".join(wanted), actual, actual in wanted)


def relative_due(start: datetime, offset: timedelta, zone: str) -> datetime:
    """`start` moved by `offset` (negative: before), whole days on the wall clock of `zone`:
    a reminder a day before a 09:00 call is at 09:00 the day before, daylight saving or not."""
    days = timedelta(days=offset.days if offset >= timedelta(0) else -((-offset).days))
    rest = offset - days
    local = start.astimezone(ZoneInfo(zone)).replace(tzinfo=None) + days
    moved = local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    return moved + rest
