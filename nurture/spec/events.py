"""Events in a dry run: `+2d convert`, `+3d status=Contacted`, `+4h fail=send_email`, `+1d opt-out=sms`,
`+1h book` (the lead books the first slot its booking link offers, or `book=2026-12-08T15:00`, a
time in the lead's zone unless it names its offset), `+5d attended` (or `no-show`, `cancel`: what
became of the lead's booked call), and engagement:
`+1d click=welcome`, `+2h open=welcome`, `+1h delivered=hello`, `+1h read=hello`,
`+1d bounce=welcome` (the message of that step), `+1d reply`."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator

from nurture.spec.durations import parse_duration
from nurture.spec.times import check_span

EVENT_KINDS = (
    "convert",
    "status",
    "score",
    "temperature",
    "tag",
    "fail",
    "opt-out",
    "opt-in",
    "inbound",
    "reply",
    "click",
    "open",
    "delivered",
    "read",
    "bounce",
    "book",
    "attended",
    "no-show",
    "cancel",
)
ENGAGEMENT_EVENTS = {"click": "clicked", "open": "opened", "delivered": "delivered"}
ENGAGEMENT_EVENTS |= {"read": "read", "bounce": "bounced"}
"""Dry-run events on a step's message, and the engagement event each records."""
APPOINTMENT_EVENTS = {"attended": "attended", "no-show": "no_show", "cancel": "cancelled"}
"""The events that end the lead's booked call, and the outcome each records."""
CHANNELS = ("sms", "whatsapp", "email", "all")
_EVENT = re.compile(
    r"^\s*\+?\s*(?P<after>(?:\d+\s*[wdhms]\s*)+)\s+(?P<kind>[a-z-]+)(?:=(?P<value>.+))?$", re.I
)


@dataclass(frozen=True)
class Event:
    after: timedelta
    kind: str
    value: str | None = None


def parse_event(text: str) -> Event:
    """Parse one event; raise ValueError saying what is wrong."""
    match = _EVENT.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not an event (write '+DURATION KIND[=VALUE]', e.g. '+2d convert')"
        )
    kind, value = match["kind"].lower(), match["value"]
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event {kind!r} (one of {', '.join(EVENT_KINDS)})")
    _check_value(kind, value and value.strip())
    after = check_span(parse_duration(match["after"]))  # the start plus it must be a time
    return Event(after, kind, value and value.strip())


def booked_time(value: str) -> datetime:
    """The time of `book=VALUE`: ISO 8601, naive (the lead's zone) or with its offset (`Z` too)."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"book={value}: write the slot's time as 2026-12-08T15:00 (the lead's zone) or "
            "2026-12-08T15:00Z, or no value for the first slot offered"
        ) from None


def _check_value(kind: str, value: str | None) -> None:
    if kind == "book":
        if value:
            booked_time(value)
        return
    if kind in ("convert", "inbound", "reply", *APPOINTMENT_EVENTS):
        if value:
            raise ValueError(f"event {kind!r} takes no value")
        return
    if not value:
        raise ValueError(f"event {kind!r} needs a value ({kind}=...)")
    if kind == "score" and not value.lstrip("+-").isdigit():
        raise ValueError(f"score={value} is not a number")
    if kind in ENGAGEMENT_EVENTS and not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        raise ValueError(f"{kind}={value}: name the step whose message it was ({kind}=STEP-ID)")
    if kind in ("opt-out", "opt-in") and value.lower() not in CHANNELS:
        raise ValueError(f"{kind}={value}: the channel is one of {', '.join(CHANNELS)}")


def _checked(text: str) -> str:
    parse_event(text)
    return text


EventText = Annotated[str, AfterValidator(_checked)]
"""An event as text, checked when a model is validated (a bad one names its place)."""
