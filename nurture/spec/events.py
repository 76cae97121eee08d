"""Events in a dry run: `+2d convert`, `+3d status=Contacted`, `+4h fail=send_email`, `+1d opt-out=sms`,
`+5d attended` (or `no-show`, `cancel`: what became of the lead's booked call)."""

import re
from dataclasses import dataclass
from datetime import timedelta
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
    "attended",
    "no-show",
    "cancel",
)
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


def _check_value(kind: str, value: str | None) -> None:
    if kind in ("convert", "inbound", *APPOINTMENT_EVENTS):
        if value:
            raise ValueError(f"event {kind!r} takes no value")
        return
    if not value:
        raise ValueError(f"event {kind!r} needs a value ({kind}=...)")
    if kind == "score" and not value.lstrip("+-").isdigit():
        raise ValueError(f"score={value} is not a number")
    if kind in ("opt-out", "opt-in") and value.lower() not in CHANNELS:
        raise ValueError(f"{kind}={value}: the channel is one of {', '.join(CHANNELS)}")


def _checked(text: str) -> str:
    parse_event(text)
    return text


EventText = Annotated[str, AfterValidator(_checked)]
"""An event as text, checked when a model is validated (a bad one names its place)."""
