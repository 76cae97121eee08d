"""What a lead does with a booking link, and the coach with an appointment: book, move, cancel,
record the outcome. Each change re-times the enrollment's steps timed from its appointment.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update
from sqlmodel import Session

from nurture.engine import booking as slots
from nurture.errors import InvalidState, InvalidToken, NotFound
from nurture.leads.enrollment import LIVE, enroll, funnel_offers
from nurture.leads.records import convert
from nurture.leads.values import LeadRules
from nurture.rules.availability import Busy
from nurture.rules.booking import Booking, check_fresh, read_token
from nurture.rules.steps import spec_of
from nurture.spec.actions import AppointmentConfig
from nurture.store import batch
from nurture.store.db import Store
from nurture.store.tables import Enrollment, Execution, Lead


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


def open_link(
    store: Store, booking: Booking, token: str, now: datetime, elsewhere: Sequence[Busy] = ()
) -> LinkView:
    """What the link opens; `elsewhere`: the coach's calendar's busy times, never offered."""
    with store.begin() as connection:
        enrollment_id = _enrollment_of(booking, token, now, connection)
        found = slots.of_enrollment(connection, enrollment_id)
        lead = _lead(connection, enrollment_id)
        free = slots.open_slots(connection, booking, now, elsewhere=elsewhere) if found else []
    zone = lead.timezone or booking.default_zone
    return LinkView(enrollment_id, found, lead.name, zone, free)


def book_from_link(
    store: Store,
    booking: Booking,
    token: str,
    slot: datetime,
    now: datetime,
    elsewhere: Sequence[Busy] = (),
) -> Row:
    """Book (or move to) the slot the lead picked; SlotTaken when it went meanwhile."""
    with store.begin(immediate=True) as connection:
        enrollment_id = _enrollment_of(booking, token, now, connection)
        found = _open(connection, enrollment_id)
        return book(connection, booking, found.id, slot, now, elsewhere)


def book(
    connection: Connection,
    booking: Booking,
    appointment_id: int,
    slot: datetime,
    now: datetime,
    elsewhere: Sequence[Busy] = (),
) -> Row:
    """The lead books (or moves to) a free slot: the call is booked there and the steps timed
    from it are re-timed; SlotTaken when it is not free."""
    row = slots.move(connection, booking, appointment_id, slot, now, elsewhere)
    if row.enrollment_id is not None:
        retime(connection, row.enrollment_id, now, booking.default_zone)
    return row


def cancel_from_link(
    store: Store, booking: Booking, token: str, now: datetime, rules: LeadRules
) -> "Outcome":
    with store.session(immediate=True) as session:
        connection = session.connection()
        enrollment_id = _enrollment_of(booking, token, now, connection)
        found = _open(connection, enrollment_id)
        return record(session, found.id, "cancelled", now, rules)


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
    connection: Connection,
    booking: Booking | None,
    appointment_id: int,
    when: datetime,
    now: datetime,
    zone: str = "UTC",
) -> Row:
    """The coach moves a call to any time not booked already (SlotTaken when it is)."""
    row = slots.move(connection, booking, appointment_id, when, now, anytime=True)
    if row.enrollment_id is not None:
        retime(connection, row.enrollment_id, now, zone)
    return row


@dataclass(frozen=True)
class Outcome:
    """What recording a call's outcome did: the appointment, the enrollment it stopped, whether
    the lead converted, and the sequence the event enrolled the lead in."""

    appointment: Row
    stopped: int | None = None
    converted: bool = False
    enrolled: str | None = None

    def said(self) -> str:
        row = self.appointment
        parts = [f"appointment {row.id} {row.status.replace('_', ' ')}: {row.title}"]
        parts += [f"enrollment {self.stopped} stopped"] if self.stopped else []
        parts += ["the lead converted"] if self.converted else []
        parts += [f"enrolled in {self.enrolled}"] if self.enrolled else []
        return "; ".join(parts)


def record(
    session: Session, appointment_id: int, outcome: str, now: datetime, rules: LeadRules
) -> Outcome:
    """attended, no_show or cancelled: recorded; the steps timed from the call re-timed; the
    enrollment stopped, the lead converted (the step's `stop_on`, `converts_on`), and a
    sequence whose trigger waits for this outcome started."""
    connection = session.connection()
    row = slots.close(connection, appointment_id, outcome, now)
    config = _config_of(connection, row)
    stopped = None
    if row.enrollment_id is not None:
        retime(connection, row.enrollment_id, now, rules.default_zone)
        if config is not None and outcome in config.stop_on:
            stopped = _stop(connection, row.enrollment_id, outcome, now)
    lead = session.get_one(Lead, row.lead_id)
    converted = config is not None and outcome in config.converts_on
    if converted:
        convert(session, lead, now, rules)
    return Outcome(row, stopped, converted, _start_sequence(session, lead, outcome, now, rules))


def _config_of(connection: Connection, row: Row) -> AppointmentConfig | None:
    """The schedule_appointment config of the step that made the appointment."""
    if row.execution_id is None:
        return None
    table = Execution.__table__
    query = select(table.c.sequence_id, table.c.version, table.c.step_id)
    found = connection.execute(query.where(table.c.id == row.execution_id)).first()
    if found is None:
        return None
    spec = spec_of(batch.definition(connection, found.sequence_id, found.version))
    step = next((s for s in spec.steps if s.id == found.step_id), None)
    config = getattr(step, "action_config", None)
    return config if isinstance(config, AppointmentConfig) else None


def _stop(connection: Connection, enrollment_id: int, outcome: str, now: datetime) -> int | None:
    table = Enrollment.__table__
    done = connection.execute(
        update(table)
        .where(table.c.id == enrollment_id, table.c.status.in_(LIVE))
        .values(
            status="stopped",
            finished_at=now,
            updated_at=now,
            next_run_at=None,
            lease_owner=None,
            lease_expires_at=None,
            exit_reason=f"the appointment was {outcome.replace('_', ' ')} (stop_on)",
        )
    )
    return enrollment_id if done.rowcount else None


class _Ended:
    """A lead as the matcher sees it the moment a call ends: `appointment_outcome` set."""

    def __init__(self, lead: Lead, outcome: str) -> None:
        self._lead, self.appointment_outcome = lead, outcome

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lead, name)


def _start_sequence(
    session: Session, lead: Lead, outcome: str, now: datetime, rules: LeadRules
) -> str | None:
    """Enroll the lead in its funnel's best sequence triggered by this outcome, if one is."""
    if lead.funnel_id is None:
        return None
    offers = [
        offer
        for offer in funnel_offers(session, lead.funnel_id)
        if offer.spec.trigger_conditions.appointment is not None
    ]
    if not offers:
        return None
    decision = enroll(session, _Ended(lead, outcome), now, rules.default_zone, offers)  # type: ignore[arg-type]
    return decision.winner.name if decision.winner is not None else None


def retime(connection: Connection, enrollment_id: int, now: datetime, zone: str) -> None:
    """An active enrollment waiting on a step timed from its appointment: from its new time, at
    once when the call was cancelled (the step then checks its `appointment:` condition)."""
    table = Enrollment.__table__
    query = select(table.c.sequence_id, table.c.version, table.c.step_id, table.c.status)
    found = connection.execute(query.where(table.c.id == enrollment_id)).first()
    if found is None or found.status != "active" or found.step_id is None:
        return
    spec = spec_of(batch.definition(connection, found.sequence_id, found.version))
    step = next((s for s in spec.steps if s.id == found.step_id), None)
    if step is not None and step.relative_to:
        slots.place_relative(connection, [(enrollment_id, step)], now, zone)


def listed(session: Session, upcoming_from: datetime | None = None) -> list[dict[str, Any]]:
    """Every appointment soonest first (booked from `upcoming_from` only, when given)."""
    table, lead = slots.appointment, Lead.__table__
    query = select(table, lead.c.name.label("lead")).join(lead, lead.c.id == table.c.lead_id)
    if upcoming_from is not None:
        query = query.where(table.c.status == "booked", table.c.starts_at >= upcoming_from)
    query = query.order_by(table.c.starts_at.is_(None), table.c.starts_at, table.c.id)
    return [dict(row._mapping) for row in session.connection().execute(query)]


def latest_open(session: Session, lead_id: int) -> int | None:
    """The id of the lead's latest booked (else offered) appointment, or None."""
    table = slots.appointment
    query = (
        select(table.c.id)
        .where(table.c.lead_id == lead_id, table.c.status.in_(slots.OPEN))
        .order_by((table.c.status == "booked").desc(), table.c.id.desc())
    )
    return session.connection().execute(query.limit(1)).scalar()
