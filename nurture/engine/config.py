"""How the engine's batches run (EngineConfig): `nurture run --once`, the daemon and the dry run each hold one."""

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from nurture.rules.booking import Booking
from nurture.rules.caps import Caps
from nurture.rules.engagement import Scoring

if TYPE_CHECKING:  # the settings and the window load pydantic: the CLI imports this module early
    from nurture.settings import Settings
    from nurture.spec.window import SendWindow

LEASE = timedelta(minutes=5)
IN_FLIGHT = 500
"""Messages in flight at once by default: a provider answering in 200 ms gets up to 2,500 a
second from one daemon (its CPU is the bound well before that)."""


def worker_name() -> str:
    """host:pid:random, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Tracking:
    """Tracked links and the open pixel: the secret that signs their tokens, where they point."""

    secret: str
    base_url: str
    """`nurture serve`'s public address: links lead to its /c/ page, the pixel to /o/."""
    open_pixel: bool = False


@dataclass(frozen=True)
class EngineConfig:
    """Who holds the batches, how big they are, how many messages fly at once, for how long,
    in which zone, with which coach."""

    worker: str = field(default_factory=worker_name)
    batch: int = 500
    """Enrollments claimed per batch."""
    in_flight: int = IN_FLIGHT
    """Messages being sent at once, across batches (a channel's `concurrency` may lower it)."""
    event_loop: str = "auto"
    """The loop the sends run on: uvloop (auto: where installed) or asyncio's own."""
    lease: timedelta = LEASE
    default_zone: str = "UTC"
    coach: dict[str, Any] = field(default_factory=dict)
    """What templates read as `coach` (settings.coach; its defaults when empty)."""
    tracking: Tracking | None = None
    """Tracked links (None: `link()` renders the address itself, nothing is rewritten)."""
    scoring: Scoring = field(default_factory=Scoring)
    """How engagement events add up to the score conditions test."""
    booking: Booking | None = None
    """The coach's availability and booking links (schedule_appointment's auto and offer)."""
    calendars: Any = None
    """nurture.engine.calendars.Calendars: the coach's busy times; invitations and calendar
    writes after each drain."""
    caps: Caps = field(default_factory=Caps)
    """Frequency caps per lead ([caps]); empty: none, and no cap check runs."""


@dataclass(frozen=True)
class NoteOptions:
    """When and how waiting notifications go: the coach's working hours, the lead page link."""

    hours: "SendWindow | None" = None
    zone: str = "UTC"
    """The working hours' zone when they name none (the project's)."""
    lead_page: str | None = None
    """The dashboard's page of a lead, `{id}` to fill (settings.lead_page)."""
    replies: bool = True
    urgent_replies: bool = False
    batch: int = 100
    lease: timedelta = LEASE

    @classmethod
    def from_settings(cls, settings: "Settings") -> "NoteOptions":
        notifications = settings.notifications
        return cls(
            settings.coach.working_hours,
            settings.timezone,
            settings.lead_page,
            notifications.replies if notifications else True,
            notifications.urgent_replies if notifications else False,
        )
