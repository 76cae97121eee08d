"""Booking a coach's slot: the first free one (auto), the one a lead picked (offer), a fixed
time; moving, cancelling and closing an appointment; the steps timed from it.

No slot is booked twice: every booker first holds the coach's advisory lock (Postgres; SQLite
holds its write lock from BEGIN IMMEDIATE), reads the booked slots, and inserts in a
savepoint, so `uq_appointment_slot` refusing a slot (a writer that took no lock) moves on to
the next slot instead of failing the transaction.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from nurture.errors import InvalidState, NotFound, SlotTaken
from nurture.rules.availability import Busy, free_slots
from nurture.rules.booking import Booking, relative_due
from nurture.spec.steps import AnyStep
from nurture.store import locks
from nurture.store.tables import Appointment, Enrollment, Lead

appointment = Appointment.__table__
enrollment = Enrollment.__table__
OPEN = ("offered", "booked")
"""The statuses a lead can still act on (book, move, cancel)."""
OUTCOMES = ("attended", "no_show", "cancelled")


@dataclass(frozen=True)
class Booked:
    """What a booking did: the appointment and its slot (None: no free slot was left)."""

    id: int
    starts_at: datetime | None
    status: str


def new_uid() -> str:
    """The invitation's iCalendar UID: the same for every update of one appointment."""
    return f"{uuid.uuid4()}@nurture"


def hold_slots(connection: Connection, coach: str) -> None:
    """Take turns with every other booker of this coach until the transaction ends."""
    locks.hold(connection, [f"appointment-slots:{coach}"])


def busy(connection: Connection, coach: str, since: datetime, until: datetime) -> list[Busy]:
    """The coach's booked appointments that overlap [since, until), as busy periods."""
    query = select(appointment.c.starts_at, appointment.c.duration_minutes).where(
        appointment.c.coach == coach,
        appointment.c.status == "booked",
        appointment.c.starts_at < until,
        appointment.c.starts_at >= since - timedelta(days=1),
    )
    rows = connection.execute(query).all()
    return [(start, start + timedelta(minutes=minutes)) for start, minutes in rows]


def open_slots(
    connection: Connection,
    booking: Booking,
    now: datetime,
    earliest: datetime | None = None,
    elsewhere: Iterable[Busy] = (),
) -> list[datetime]:
    """The coach's free slots now: availability less booked calls and `elsewhere` (a calendar)."""
    horizon = now + booking.availability.horizon
    taken = busy(connection, booking.coach, now, horizon) + list(elsewhere)
    return free_slots(booking.availability, booking.default_zone, now, taken, earliest)


def _insert(connection: Connection, row: dict[str, Any]) -> int | None:
    """The new row's id, or None when the store refuses its slot (taken meanwhile)."""
    try:
        with connection.begin_nested():
            found = connection.execute(insert(appointment).values(row)).inserted_primary_key
            return int(found[0]) if found is not None else None
    except IntegrityError:
        return None


def book_first(
    connection: Connection,
    booking: Booking,
    row: dict[str, Any],
    now: datetime,
    earliest: datetime,
    elsewhere: Iterable[Busy] = (),
) -> Booked:
    """Book the first free slot from `earliest`; with none left, an `unbooked` appointment."""
    hold_slots(connection, booking.coach)
    row = _new(row, now) | {"coach": booking.coach, "mode": "auto"}
    row["duration_minutes"] = booking.availability.slot // timedelta(minutes=1)
    for slot in open_slots(connection, booking, now, earliest, elsewhere):
        found = _insert(connection, row | {"starts_at": slot, "status": "booked"})
        if found is not None:
            return Booked(found, slot, "booked")
    found = _insert(connection, row | {"starts_at": None, "status": "unbooked"})
    assert found is not None  # an unbooked row takes no slot
    return Booked(found, None, "unbooked")


def book_fixed(connection: Connection, coach: str, row: dict[str, Any], now: datetime) -> Booked:
    """Book the time the sequence fixed; a time already booked is a `conflict` appointment."""
    hold_slots(connection, coach)
    row = _new(row, now) | {"coach": coach, "mode": "fixed"}
    for status in ("booked", "conflict"):
        found = _insert(connection, row | {"status": status})
        if found is not None:
            return Booked(found, row["starts_at"], status)
    raise AssertionError("a conflict row takes no slot")


def offer(connection: Connection, coach: str, row: dict[str, Any], now: datetime) -> Booked:
    """An appointment the lead books on the page `{{ booking_link }}` opens."""
    row = _new(row, now) | {"coach": coach, "mode": "offer", "status": "offered"}
    found = _insert(connection, row | {"starts_at": None})
    assert found is not None
    return Booked(found, None, "offered")


def _new(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"uid": new_uid(), "revision": 0, "created_at": now, "updated_at": now} | row


def get(connection: Connection, appointment_id: int) -> Row:
    found = connection.execute(select(appointment).where(appointment.c.id == appointment_id))
    row = found.first()
    if row is None:
        raise NotFound(f"no appointment {appointment_id}")
    return row


def of_enrollment(connection: Connection, enrollment_id: int) -> Row | None:
    """The enrollment's latest appointment (booked or offered before any other)."""
    query = (
        select(appointment)
        .where(appointment.c.enrollment_id == enrollment_id)
        .order_by(appointment.c.status.in_(OPEN).desc(), appointment.c.id.desc())
    )
    return connection.execute(query.limit(1)).first()


def move(
    connection: Connection,
    booking: Booking | None,
    appointment_id: int,
    slot: datetime,
    now: datetime,
    elsewhere: Iterable[Busy] = (),
    *,
    anytime: bool = False,
) -> Row:
    """Book an offered appointment at `slot`, or move a booked one there; SlotTaken when the
    slot is not free (`anytime`: the coach's own choice, any time not booked)."""
    row = get(connection, appointment_id)
    hold_slots(connection, row.coach)
    if row.status not in OPEN:
        raise InvalidState(f"appointment {appointment_id} is {row.status}: it cannot be booked")
    changes = {"starts_at": slot, "status": "booked", "updated_at": now}
    changes["revision"] = row.revision + (row.status == "booked")
    if not anytime:
        if booking is None or slot not in open_slots(connection, booking, now, elsewhere=elsewhere):
            raise SlotTaken(f"{slot:%Y-%m-%d %H:%M} UTC is not a free slot any more")
        changes["duration_minutes"] = booking.availability.slot // timedelta(minutes=1)
    try:
        with connection.begin_nested():
            connection.execute(
                update(appointment).where(appointment.c.id == row.id).values(changes)
            )
    except IntegrityError:
        raise SlotTaken(f"{slot:%Y-%m-%d %H:%M} UTC is booked already") from None
    return get(connection, appointment_id)


def close(connection: Connection, appointment_id: int, outcome: str, now: datetime) -> Row:
    """Record an appointment's outcome (attended, no_show, cancelled)."""
    row = get(connection, appointment_id)
    if outcome == "cancelled" and row.status not in OPEN:
        raise InvalidState(f"appointment {appointment_id} is {row.status}: nothing to cancel")
    if outcome != "cancelled" and row.status not in ("booked", *OUTCOMES[:2]):
        raise InvalidState(f"appointment {appointment_id} is {row.status}: it never took place")
    revision = row.revision + (outcome == "cancelled")
    connection.execute(
        update(appointment)
        .where(appointment.c.id == row.id)
        .values(status=outcome, updated_at=now, revision=revision)
    )
    return get(connection, appointment_id)


def _zone_of(connection: Connection, found: Row | None, default_zone: str) -> str:
    """The time zone of the appointment's lead (their wall clock times the reminders)."""
    if found is None:
        return default_zone
    table = Lead.__table__
    zone = connection.scalar(select(table.c.timezone).where(table.c.id == found.lead_id))
    return zone or default_zone


def place_relative(
    connection: Connection,
    waiting: Sequence[tuple[int, AnyStep]],
    now: datetime,
    default_zone: str = "UTC",
) -> None:
    """Time each (enrollment, step timed from its appointment): from the appointment's start
    (at once when that has passed, or when the call was cancelled), or parked (no time) while
    nothing is booked."""
    for enrollment_id, step in waiting:
        found = of_enrollment(connection, enrollment_id)
        zone = _zone_of(connection, found, default_zone)
        due = None
        over = found is not None and found.status in ("attended", "no_show")
        if found is not None and (found.status == "cancelled" or (over and step.before)):
            due = now  # it runs at once: its `appointment:` condition decides, or it is skipped
        elif found is not None and found.status in ("booked", "attended", "no_show"):
            due = max(now, relative_due(found.starts_at, step.offset, zone))
        connection.execute(
            update(enrollment)
            .where(
                and_(
                    enrollment.c.id == enrollment_id,
                    enrollment.c.status == "active",
                    enrollment.c.step_id == step.id,
                )
            )
            .values(next_run_at=due, updated_at=now)
        )
