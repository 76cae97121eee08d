"""Events in a dry run, applied to the lead through the code `nurture leads ...` uses.

`+2d convert`, `+3d status=Contacted`, `+1d score=80` (or `score=+10`), `+1d tag=replied`,
`+1d opt-out=sms`, `+1d inbound` or `+1d reply` (ends a `stop_on_reply` sequence, wakes a
`wait_for: {event: reply}`), `+1d click=welcome` (a click on the message of step welcome; also
open, delivered, read, bounce), `+1h book` or `+1h book=2026-12-08T15:00` (the lead books a slot
its booking link offers, as the booking page does it), `+5d attended`, `no-show` or `cancel` (what
became of the lead's booked call); and `+4h fail=send_email`
(also a step id, and `*N` for the next N attempts only), which makes the channel fail those
sends: retries, then the sequence's failure policy.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from nurture.channels import OutgoingMessage, TemporaryFailure
from nurture.errors import InvalidEvent, SlotTaken
from nurture.leads import engagement
from nurture.leads.consent import inbound
from nurture.leads.engagement import Happened
from nurture.leads.enrollment import stopped_text
from nurture.leads.records import LeadInput, LeadRules, clean, convert, set_values
from nurture.rules.booking import Booking
from nurture.spec.actions import MESSAGE_ACTIONS
from nurture.spec.events import (
    APPOINTMENT_EVENTS,
    ENGAGEMENT_EVENTS,
    Event,
    booked_time,
    parse_event,
)
from nurture.spec.models import SequenceSpec
from nurture.store.tables import Execution, Lead


@dataclass(frozen=True)
class Happening:
    """An event at its time in the run."""

    at: datetime
    text: str
    event: Event


def schedule(texts: list[str], start: datetime) -> list[Happening]:
    """The events parsed and in time order (ties keep the order given)."""
    happenings = []
    for text in texts:
        try:
            event = parse_event(text)
        except ValueError as error:
            raise InvalidEvent(f"{text!r}: {error}") from None
        happenings.append(Happening(start + event.after, text.strip(), event))
    return sorted(happenings, key=lambda happening: happening.at)


@dataclass
class Failures:
    """The channel behaviour of a dry run: sends of the failing steps raise a temporary failure."""

    actions: dict[str, str] = field(default_factory=dict)  # step id -> action type
    rules: list[list] = field(default_factory=list)  # [target, attempts left or None, text]

    def know(self, spec: SequenceSpec) -> None:
        self.actions |= {step.key: step.action_type.value for step in spec.steps}

    def add(self, target: str, text: str) -> str:
        target, _, times = target.partition("*")
        if times and (not times.strip().isdigit() or int(times) < 1):
            raise InvalidEvent(f"{text!r}: write fail=STEP or fail=STEP*N (N attempts, 1 or more)")
        messages = {action.value for action in MESSAGE_ACTIONS}
        if target not in messages and self.actions.get(target) not in messages:
            raise InvalidEvent(
                f"{text!r}: {target!r} is not a message step of this sequence nor a message "
                f"action ({', '.join(sorted(messages))}); only sends go through a channel"
            )
        self.rules.append([target, int(times) if times else None, text])
        return f"the channel fails {target}" + (f" {times} time(s)" if times else " from now on")

    def __call__(self, message: OutgoingMessage) -> None:
        step_id = message.key.split(":")[1]
        for rule in self.rules:
            target, left, text = rule
            if target in (step_id, self.actions.get(step_id)) and left != 0:
                if left is not None:
                    rule[1] = left - 1
                raise TemporaryFailure(f"simulated failure ({text})")


@dataclass(frozen=True)
class Calls:
    """What a `book` event books against: the coach's availability, and their calendar (an
    object with `busy(now)`, nurture.engine.calendars.Calendars) when the run reads it."""

    booking: Booking | None = None
    calendars: Any = None


def happen(
    session: Session,
    lead: Lead,
    happening: Happening,
    rules: LeadRules,
    failures: Failures,
    calls: Calls = Calls(),
) -> str:
    """Apply one event to the lead at its time; what it did, in a few words."""
    event, now = happening.event, happening.at
    kind, value = event.kind, event.value or ""
    if kind == "fail":
        return failures.add(value, happening.text)
    if kind == "book":
        return _book(session, lead, value, now, calls)
    if kind == "convert":
        stopped = convert(session, lead, now, rules)
        return f"lead converted ({lead.status}); {_stopped(stopped)}"
    if kind in ENGAGEMENT_EVENTS:
        return engaged(session, lead, happening)
    if kind in APPOINTMENT_EVENTS:
        return _call_ended(session, lead, APPOINTMENT_EVENTS[kind], now, rules)
    if kind in ("inbound", "reply"):
        stopped = inbound(session, lead, now).stopped
        return "the lead wrote in" + (
            f"; {stopped_text(stopped, 'stop_on_reply')}" if stopped else ""
        )
    before = lead.converted_at
    set_values(session, lead, _values(lead, kind, value, rules), now, rules)
    session.flush()
    if lead.converted_at is not None and before is None:
        return f"status {lead.status} converts the lead"
    return _described(lead, kind, value)


def engaged(session: Session, lead: Lead, happening: Happening) -> str:
    """The lead clicked, opened, got, read or bounced the message of a step (its last attempt)."""
    event, step_id = happening.event, happening.event.value or ""
    c = Execution.__table__.c
    query = select(c.id, c.enrollment_id, c.sequence_id, c.step_id, c.detail).where(
        c.lead_id == lead.id, c.step_id == step_id, c.status == "sent"
    )
    sent = session.connection().execute(query.order_by(c.id.desc()).limit(1)).first()
    if sent is None:
        return f"no message of step {step_id!r} went to the lead (yet): nothing to {event.kind}"
    kind = ENGAGEMENT_EVENTS[event.kind]
    links = (sent.detail or {}).get("links") or [None]
    happened = Happened(lead.id, kind, happening.at, f"{kind}:{sent.id}", sent, links[0])
    new = engagement.record(session.connection(), happened)
    return f"{kind} the message of {step_id}" + ("" if new else " (again: counted once)")


def _call_ended(session: Session, lead: Lead, outcome: str, now: datetime, rules: LeadRules) -> str:
    """Record the outcome of the lead's latest booked (or offered) call, as the CLI does."""
    from nurture.engine import appointments

    found = appointments.latest_open(session, lead.id)
    if found is None:
        raise InvalidEvent(f"{outcome.replace('_', ' ')}: the lead has no booked call by then")
    return appointments.record(session, found, outcome, now, rules).said()


def _book(session: Session, lead: Lead, value: str, now: datetime, calls: Calls) -> str:
    """The lead picks a slot on its booking page (the first offered, or the one named), booked
    as the page books it."""
    from nurture.engine import appointments
    from nurture.engine import booking as slots

    booking = calls.booking
    if booking is None:
        raise InvalidEvent("book: the project has no [availability]: there is no slot to book")
    found = appointments.latest_open(session, lead.id)
    if found is None:
        raise InvalidEvent("book: the lead has no offered (or booked) call by then")
    connection = session.connection()
    elsewhere = calls.calendars.busy(now) if calls.calendars is not None else []
    free = slots.open_slots(connection, booking, now, elsewhere=elsewhere)
    zone = ZoneInfo(lead.timezone or booking.default_zone)
    if not free:
        raise InvalidEvent("book: the booking page offers no free slot then")
    slot = free[0]
    if value:
        wanted = booked_time(value)
        slot = wanted if wanted.tzinfo else wanted.replace(tzinfo=zone)
    try:
        appointments.book(connection, booking, found, slot, now, elsewhere)
    except SlotTaken:
        first = free[0].astimezone(zone)
        raise InvalidEvent(
            f"book={value}: not a slot the booking page offers then (the first free one is "
            f"{first:%Y-%m-%dT%H:%M} {first.tzname()})"
        ) from None
    return f"the lead booked {slot.astimezone(zone):%a %Y-%m-%d %H:%M %Z}"


def _values(lead: Lead, kind: str, value: str, rules: LeadRules) -> dict:
    if kind == "score":
        score = lead.score + int(value) if value[0] in "+-" else int(value)
        return {"score": min(max(score, 0), 100)}
    if kind in ("status", "temperature"):
        given = LeadInput(status=value) if kind == "status" else LeadInput(temperature=value)
        return clean(given, rules.phone_region)
    if kind == "tag":
        return {"tags": [value]}
    if kind == "opt-out":
        return {"opted_out": list(dict.fromkeys([*lead.opted_out, value.lower()]))}
    return {"opted_out": [c for c in lead.opted_out if c.casefold() != value.casefold()]}


def _described(lead: Lead, kind: str, value: str) -> str:
    if kind == "score":
        return f"score is {lead.score}"
    if kind in ("status", "temperature"):
        return f"{kind} is {getattr(lead, kind)}"
    if kind == "tag":
        return "tags: " + ", ".join(lead.tags)
    return "opted out of: " + (", ".join(lead.opted_out) or "nothing")


def _stopped(ids: list[int]) -> str:
    if not ids:
        return "no enrollment stops on conversion"
    return stopped_text(ids, "stop_on_conversion")
