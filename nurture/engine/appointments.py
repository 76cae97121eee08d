"""What a lead does with a booking link, and the coach with an appointment: book, move, cancel,
record the outcome. Each change re-times the enrollment's steps timed from its appointment.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select

from nurture.engine import booking as slots
from nurture.errors import InvalidState, InvalidToken, NotFound
from nurture.rules.booking import Booking, check_fresh, read_token
from nurture.rules.steps import spec_of
from nurture.store import queries
from nurture.store.db import Store
from nurture.store.tables import Enrollment, Lead

OUTCOME_OF = {"done": "attended", "no-show": "no_show", "no_show": "no_show"}


@dataclass(frozen=True)
class LinkView:
    """What a booking link opens: the appointment, the lead's zone, and the slots to pick."""

    enrollment_id: int
    appointment: Row | None
    lead_name: str
    zone: str
    slots: list[datetime]

    @property
    def bookable(self) -> bool:
        return self.appointment is not None and self.appointment.status in slots.OPEN


def _enrollment_of(booking: Booking, token: str, now: datetime, connection: Connection) -> int:
    """The enrollment a token names; InvalidToken, or ExpiredLink when no call keeps it alive."""
    if not booking.secret:
        raise InvalidToken("booking links are not configured on this server")
    enrollment_id, issued = read_token(booking.secret, token)
    found = slots.of_enrollment(connection, enrollment_id)
    upcoming = found is not None and found.status == "booked" and found.starts_at > now
    if not upcoming:
        check_fresh(issued, now, booking.availability.link_valid)
    return enrollment_id


def open_link(store: Store, booking: Booking, token: str, now: datetime) -> LinkView:
    with store.begin() as connection:
        enrollment_id = _enrollment_of(booking, token, now, connection)
        found = slots.of_enrollment(connection, enrollment_id)
        lead = _lead(connection, enrollment_id)
        free = slots.open_slots(connection, booking, now) if found is not None else []
    zone = lead.timezone or booking.default_zone
    return LinkView(enrollment_id, found, lead.name, zone, free)


def book_from_link(
    store: Store, booking: Booking, token: str, slot: datetime, now: datetime
) -> Row:
    """Book (or move to) the slot the lead picked; SlotTaken when it went meanwhile."""
    with store.begin(immediate=True) as connection:
        enrollment_id = _enrollment_of(booking, token, now, connection)
        found = _open(connection, enrollment_id)
        row = slots.move(connection, booking, found.id, slot, now)
        retime(connection, enrollment_id, now)
        return row


def cancel_from_link(store: Store, booking: Booking, token: str, now: datetime) -> Row:
    with store.begin(immediate=True) as connection:
        enrollment_id = _enrollment_of(booking, token, now, connection)
        found = _open(connection, enrollment_id)
        return close(connection, found.id, "cancelled", now)


def _open(connection: Connection, enrollment_id: int) -> Row:
    found = slots.of_enrollment(connection, enrollment_id)
    if found is None or found.status not in slots.OPEN:
        status = found.status if found is not None else "none"
        raise InvalidState(f"this appointment is {status.replace('_', ' ')}: nothing to change")
    return found


def _lead(connection: Connection, enrollment_id: int) -> Any:
    lead, enrollment = Lead.__table__, Enrollment.__table__
    query = select(lead.c.name, lead.c.timezone).join(enrollment, enrollment.c.lead_id == lead.c.id)
    found = connection.execute(query.where(enrollment.c.id == enrollment_id)).first()
    if found is None:
        raise NotFound("the lead of this booking link no longer exists")
    return found


def reschedule(
    connection: Connection, booking: Booking, appointment_id: int, when: datetime, now: datetime
) -> Row:
    """The coach moves a call to any time not booked already (SlotTaken when it is)."""
    row = slots.move(connection, booking, appointment_id, when, now, anytime=True)
    if row.enrollment_id is not None:
        retime(connection, row.enrollment_id, now)
    return row


def close(connection: Connection, appointment_id: int, outcome: str, now: datetime) -> Row:
    """attended, no_show or cancelled: recorded, and the steps timed from the call re-timed."""
    row = slots.close(connection, appointment_id, outcome, now)
    if row.enrollment_id is not None:
        retime(connection, row.enrollment_id, now)
    return row


def retime(connection: Connection, enrollment_id: int, now: datetime) -> None:
    """An active enrollment waiting on a step timed from its appointment: from its new time, at
    once when the call was cancelled (the step then checks its `appointment:` condition)."""
    table = Enrollment.__table__
    query = select(table.c.sequence_id, table.c.version, table.c.step_id, table.c.status)
    found = connection.execute(query.where(table.c.id == enrollment_id)).first()
    if found is None or found.status != "active" or found.step_id is None:
        return
    spec = spec_of(queries.definition(connection, found.sequence_id, found.version))
    step = next((s for s in spec.steps if s.id == found.step_id), None)
    if step is not None and step.relative_to:
        slots.place_relative(connection, [(enrollment_id, step)], now)
