"""Appointments as iCalendar (RFC 5545, the `icalendar` library): the one VEVENT that the
lead's invitation, the coach's feed and the coach's CalDAV calendar all carry.

An appointment keeps its UID for life; each change (a new time, a cancellation) raises its
SEQUENCE, so every calendar app updates the event it has instead of adding another.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from icalendar import Calendar, Event, vCalAddress, vText

from nurture.channels.protocol import Attachment

PRODID = "-//nurture//appointments//EN"
Method = Literal["REQUEST", "CANCEL", "PUBLISH"]


@dataclass(frozen=True)
class Person:
    name: str
    email: str | None


@dataclass(frozen=True)
class CalendarEvent:
    """An appointment as calendars see it."""

    uid: str
    revision: int
    title: str
    starts_at: datetime
    minutes: int
    cancelled: bool
    organizer: Person
    attendee: Person
    location: str | None = None
    notes: str | None = None
    stamp: datetime | None = None

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.minutes)


def _address(person: Person, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{person.email}" if person.email else "invalid:nomail")
    address.params["CN"] = vText(person.name)
    address.params.update(params)
    return address


def vevent(event: CalendarEvent) -> Event:
    """The VEVENT of an appointment (STATUS:CANCELLED once cancelled)."""
    found = Event()
    found.add("uid", event.uid)
    found.add("sequence", event.revision)
    found.add("dtstamp", event.stamp or event.starts_at)
    found.add("dtstart", event.starts_at)
    found.add("dtend", event.ends_at)
    found.add("summary", event.title)
    found.add("status", "CANCELLED" if event.cancelled else "CONFIRMED")
    found.add("transp", "OPAQUE")
    if event.location:
        found.add("location", event.location)
    if event.notes:
        found.add("description", event.notes)
    found.add("organizer", _address(event.organizer))
    found.add("attendee", _address(event.attendee, ROLE="REQ-PARTICIPANT", RSVP="FALSE"))
    return found


def calendar(
    events: Iterable[CalendarEvent], method: Method | None = None, name: str = ""
) -> bytes:
    """A VCALENDAR of the events: an invitation (METHOD), a feed, a CalDAV object (none)."""
    found = Calendar()
    found.add("prodid", PRODID)
    found.add("version", "2.0")
    if method:
        found.add("method", method)
    if name:
        found.add("x-wr-calname", name)
    for event in events:
        found.add_component(vevent(event))
    return found.to_ical()


def invitation(event: CalendarEvent) -> Attachment:
    """The .ics an invitation email carries: a request, or a cancellation (METHOD:CANCEL)."""
    method: Method = "CANCEL" if event.cancelled else "REQUEST"
    data = calendar([event], method).decode()
    return Attachment("invite.ics", "text/calendar", data, {"method": method})
