"""After a booking commits: the lead's invitation email (.ics, METHOD:REQUEST or CANCEL) and the
coach's CalDAV calendar, each brought up to the appointment's revision.

Every booker (the daemon's completions, `serve`'s page, the CLI) only commits a revision; the
daemon's tick, `run --once`, `serve` after a booking and the CLI after a change then call
`sync`. An invitation is claimed (its revision recorded) before it is sent, so two syncs never
mail it twice, and given back when the send fails for a reason that may pass. A calendar write
is a PUT at the event's UID: a retry or a second daemon replaces it, never adds a copy.
"""

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, insert, or_, select, update

from nurture.channels import OutgoingMessage, PermanentFailure, UncertainSend
from nurture.channels.caldav import CalDavCalendar
from nurture.channels.calendar import CalendarEvent, Person, calendar, invitation
from nurture.errors import ChannelError, ConfigError
from nurture.rules.availability import Busy
from nurture.rules.booking import Booking
from nurture.store.db import Store
from nurture.store.tables import Appointment, Lead, OutboxMessage

appointment, lead = Appointment.__table__, Lead.__table__
WRITTEN = ("booked", "cancelled", "attended", "no_show")
"""The statuses whose event calendars hold (a call that took place stays in them)."""
BUSY_FOR = 60.0
"""Seconds the coach's busy times are kept before the calendar is read again."""


@dataclass
class Calendars:
    """Where appointments go once booked: the lead's email, the coach's CalDAV calendar."""

    booking: Booking | None = None
    coach: dict[str, Any] = field(default_factory=dict)
    email: Any = None  # a Channel for email, or None: no invitations
    caldav: CalDavCalendar | None = None
    _busy: tuple[float, datetime, list[Busy]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, settings: Any, channels: Any = None) -> "Calendars":
        """From the settings and the run's channels (their email channel sends invitations)."""
        availability = settings.availability
        caldav = availability.caldav if availability is not None else None
        return cls(
            booking=settings.booking,
            coach=settings.coach.model_dump(),
            email=(channels or {}).get("email"),
            caldav=CalDavCalendar.of(caldav) if caldav is not None else None,
        )

    def busy(self, now: datetime) -> list[Busy]:
        """The coach's calendar's busy times over the booking horizon from `now` (read at most
        once a minute, and again for a `now` a minute past the last read's: a dry run's clock
        jumps); TemporaryFailure when it cannot be read: nothing is booked blind."""
        if self.caldav is None or self.booking is None:
            return []
        with self._lock:
            kept = self._busy
            fresh = kept is not None and time.monotonic() - kept[0] < BUSY_FOR
            if (
                kept is not None
                and fresh
                and kept[1] <= now < kept[1] + timedelta(seconds=BUSY_FOR)
            ):
                return kept[2]
            found = self.caldav.busy(now, now + self.booking.availability.horizon)
            self._busy = (time.monotonic(), now, found)
            return found

    def forget_busy(self) -> None:
        with self._lock:
            self._busy = None


@dataclass
class Synced:
    invited: int = 0
    written: int = 0
    problems: list[str] = field(default_factory=list)


def sync(store: Store, calendars: Calendars, now: datetime) -> Synced:
    """Send the invitations and write the calendar events that lag their appointment (calls
    still to come: a past one is left as it is)."""
    done = Synced()
    if calendars.email is not None:
        for row in _lagging(store, appointment.c.invited_revision, now):
            _invite(store, calendars, row, now, done)
    if calendars.caldav is not None:
        for row in _lagging(store, appointment.c.synced_revision, now):
            _write(store, calendars, row, now, done)
    return done


def _lagging(store: Store, column: Any, now: datetime) -> list[Row]:
    query = (
        _with_lead(select(appointment))
        .where(appointment.c.status.in_(WRITTEN), appointment.c.starts_at > now)
        .where(or_(column.is_(None), column < appointment.c.revision))
        .order_by(appointment.c.id)
    )
    with store.begin() as connection:
        return list(connection.execute(query))


FEED_PAST = timedelta(days=90)
"""How far back the coach's feed goes."""


def feed(store: Store, calendars: Calendars, coach: str, now: datetime) -> bytes:
    """The coach's calendar feed: every call from 90 days back on, cancelled ones marked so."""
    query = (
        _with_lead(select(appointment))
        .where(appointment.c.coach == coach, appointment.c.status.in_(WRITTEN))
        .where(appointment.c.starts_at >= now - FEED_PAST)
        .order_by(appointment.c.starts_at)
    )
    with store.begin() as connection:
        rows = list(connection.execute(query))
    name = f"{calendars.coach.get('name') or 'Coach'}: appointments"
    return calendar((event_of(row, calendars.coach) for row in rows), "PUBLISH", name)


def _with_lead(query: Any) -> Any:
    return (
        query.add_columns(lead.c.name.label("lead_name"), lead.c.email.label("lead_email"))
        .add_columns(lead.c.timezone.label("lead_zone"), lead.c.opted_out)
        .join(lead, lead.c.id == appointment.c.lead_id)
    )


def event_of(row: Row, coach: dict[str, Any]) -> CalendarEvent:
    """The calendar event of an appointment row (with its lead's name and email)."""
    return CalendarEvent(
        uid=row.uid or f"appointment-{row.id}@nurture",
        revision=row.revision,
        title=row.title,
        starts_at=row.starts_at,
        minutes=row.duration_minutes,
        cancelled=row.status == "cancelled",
        organizer=Person(coach.get("name") or "Coach", coach.get("email") or None),
        attendee=Person(row.lead_name, row.lead_email),
        location=row.location,
        notes=row.notes,
        stamp=row.updated_at or row.created_at,
    )


def _claim(connection: Connection, row: Row, column: str, value: int | None) -> bool:
    """Record `value` as the revision sent, if no other sync did meanwhile."""
    current = appointment.c[column]
    was = current.is_(None) if getattr(row, column) is None else current == getattr(row, column)
    done = connection.execute(
        update(appointment).where(appointment.c.id == row.id, was).values({column: value})
    )
    return bool(done.rowcount)


def _invite(store: Store, calendars: Calendars, row: Row, now: datetime, done: Synced) -> None:
    silent = not row.lead_email or {"email", "all"} & {c.casefold() for c in row.opted_out}
    first_cancelled = row.status == "cancelled" and row.invited_revision is None
    with store.begin(immediate=True) as connection:
        if not _claim(connection, row, "invited_revision", row.revision):
            return
    if silent or first_cancelled or row.status in ("attended", "no_show"):
        return  # nothing to tell: no address, opted out, or never invited to it
    message = _invitation(row, calendars, now)
    try:
        result = calendars.email.send(message)
    except PermanentFailure as error:
        done.problems.append(f"appointment {row.id}: the invitation failed: {error}")
        return
    except UncertainSend as error:  # the relay may have it: never mailed twice, so kept as sent
        done.problems.append(
            f"appointment {row.id}: the invitation may have been sent (not sent again): {error}"
        )
        return
    except ChannelError as error:
        with store.begin(immediate=True) as connection:  # given back: the next sync tries again
            connection.execute(
                update(appointment)
                .where(appointment.c.id == row.id)
                .values(invited_revision=row.invited_revision)
            )
        done.problems.append(f"appointment {row.id}: the invitation will be sent again: {error}")
        return
    if result.outbox is not None:  # the outbox channel: its row is the send
        with store.begin(immediate=True) as connection:
            connection.execute(
                insert(OutboxMessage.__table__).values(result.outbox | {"created_at": now})
            )
    done.invited += 1


def _invitation(row: Row, calendars: Calendars, now: datetime) -> OutgoingMessage:
    booking = calendars.booking
    zone = row.lead_zone or (booking.default_zone if booking else "UTC")
    when = f"{row.starts_at.astimezone(ZoneInfo(zone)):%A %d %B %Y, %H:%M} ({zone})"
    coach = calendars.coach.get("name") or "your coach"
    if row.status == "cancelled":
        subject, text = f"Cancelled: {row.title}", f"Your call with {coach} on {when} is cancelled."
    else:
        verb = "moved to" if row.revision else "booked for"
        subject = f"{'Updated' if row.revision else 'Invitation'}: {row.title}, {when}"
        text = f"Your call with {coach} is {verb} {when}."
        text += f"\nWhere: {row.location}" if row.location else ""
        if booking is not None and booking.secret and booking.url and row.enrollment_id:
            text += f"\n\nTo move or cancel it: {booking.link(row.enrollment_id, now)}"
    return OutgoingMessage(
        channel="email",
        recipient=row.lead_email,
        subject=subject,
        body=text + "\n",
        key=f"invite-{row.id}-{row.revision}",
        attachments=(invitation(event_of(row, calendars.coach)),),
    )


def _write(store: Store, calendars: Calendars, row: Row, now: datetime, done: Synced) -> None:
    assert calendars.caldav is not None
    try:
        calendars.caldav.put(event_of(row, calendars.coach))
    except (ChannelError, ConfigError) as error:
        done.problems.append(f"appointment {row.id}: the calendar will be written again: {error}")
        return
    with store.begin(immediate=True) as connection:
        connection.execute(
            update(appointment)
            .where(
                appointment.c.id == row.id,
                or_(
                    appointment.c.synced_revision.is_(None),
                    appointment.c.synced_revision < row.revision,
                ),
            )
            .values(synced_revision=row.revision)
        )
    done.written += 1
