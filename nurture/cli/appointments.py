"""`nurture appointments`: the calls schedule_appointment steps booked, and what became of them."""

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from nurture.cli.context import state
from nurture.cli.options import JSON
from nurture.cli.output import note, out, plural, print_json, print_result, warning
from nurture.errors import ChannelError, NurtureError
from nurture.spec.durations import format_duration

ID = Annotated[int, typer.Argument(help="The appointment id (`nurture appointments list`).")]
app = typer.Typer(
    help="Appointments: list, done, no-show, cancel, reschedule; the coach's calendar feed.",
    no_args_is_help=True,
)


def _time(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else ""


@app.command("list")
def list_appointments(
    upcoming: Annotated[
        bool, typer.Option("--upcoming", help="Only booked calls still to come.")
    ] = False,
    json: JSON = False,
) -> None:
    """Every appointment, soonest first (offered and unbooked ones, with no time, last).

    \b
    Examples:
      nurture appointments list --upcoming
      nurture appointments list --json
    """
    from nurture.engine import appointments as service

    with state.session() as session:
        rows = service.listed(session, datetime.now(UTC) if upcoming else None)
    if json:
        print_json(rows)
        return
    table = Table("id", "lead", "appointment", "status", "starts (UTC)", "minutes", "location")
    for r in rows:
        table.add_row(
            str(r["id"]),
            escape(r["lead"]),
            escape(r["title"]),
            r["status"].replace("_", " "),
            _time(r["starts_at"]),
            str(r["duration_minutes"]),
            escape(r["location"] or ""),
        )
    out.print(table)


def _record(appointment_id: int, outcome: str, json: bool) -> None:
    from nurture.engine import appointments as service
    from nurture.leads.values import LeadRules

    rules = LeadRules.from_settings(state.settings)
    with state.session(write=True) as session:
        done = service.record(session, appointment_id, outcome, datetime.now(UTC), rules)
        row = _row(done.appointment)
    print_result(row, json=json, message=done.said())
    _sync()


def _sync(json: bool = False) -> None:
    """The invitation and the coach's calendar, once the change is committed (`json`: print
    what was done)."""
    from nurture.channels import channels_for
    from nurture.engine import calendars

    settings = state.settings
    with state.store(write=True) as store:
        channels = channels_for(settings.channel, store, settings.providers)
        synced = calendars.sync(
            store, calendars.Calendars.of(settings, channels), datetime.now(UTC)
        )
    for problem in synced.problems:
        warning(problem)
    if json:
        print_json(vars(synced))
    elif synced.invited or synced.written:
        note(
            f"{plural(synced.invited, 'invitation')} sent, {plural(synced.written, 'calendar event')} written"
        )


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


@app.command("done")
def done(
    appointment_id: ID,
    no_show: Annotated[
        bool, typer.Option("--no-show", help="The lead did not come: a no_show, not attended.")
    ] = False,
    json: JSON = False,
) -> None:
    """Record that the call took place (or, with --no-show, that the lead did not come).

    Steps whose `appointment:` condition names the outcome run, `stop_on` and `converts_on`
    apply, and a sequence triggered by the outcome starts.

    \b
    Examples:
      nurture appointments done 7
      nurture appointments done 7 --no-show
    """
    _record(appointment_id, "no_show" if no_show else "attended", json)


@app.command("cancel")
def cancel(appointment_id: ID, json: JSON = False) -> None:
    """Cancel a booked (or offered) call: its slot is free again.

    \b
    Examples:
      nurture appointments cancel 7
    """
    _record(appointment_id, "cancelled", json)


@app.command("reschedule")
def reschedule(
    appointment_id: ID,
    when: Annotated[
        str,
        typer.Argument(
            help="The new start, ISO 8601 (2026-12-09T10:00; without an offset, in the "
            "coach's time zone)."
        ),
    ],
    json: JSON = False,
) -> None:
    """Move a call to another time (any time no other call is booked at); reminders move too.

    \b
    Examples:
      nurture appointments reschedule 7 2026-12-09T10:00
    """
    from nurture.engine import appointments as service
    from nurture.leads.when import moment_in

    settings = state.settings
    booking = settings.booking
    zone = booking.zone if booking is not None else settings.timezone
    start = moment_in(when, zone, "WHEN")
    with state.session(write=True) as session:
        row = service.reschedule(
            session.connection(),
            booking,
            appointment_id,
            start,
            datetime.now(UTC),
            settings.timezone,
        )
        shown = _row(row)
    message = f"appointment {appointment_id} moved to {start:%Y-%m-%d %H:%M} UTC: {row.title}"
    print_result(shown, json=json, message=message)
    _sync()


@app.command("feed-url")
def feed_url(json: JSON = False) -> None:
    """The coach's private calendar feed on `nurture serve`: subscribe to it in any calendar
    app (Google: Other calendars → From URL; Apple: File → New Calendar Subscription).

    \b
    Examples:
      nurture appointments feed-url
    """
    booking = state.settings.booking
    if booking is None:
        raise NurtureError("the feed needs [availability] in nurture.toml")
    try:
        url = booking.feed_url()
    except ValueError as error:
        raise NurtureError(str(error)) from None
    if json:
        print_json({"url": url})
    else:
        print(url)


@app.command("check-calendar")
def check_calendar(json: JSON = False) -> None:
    """Reach the coach's CalDAV calendar and list its busy times over the booking horizon.

    \b
    Examples:
      nurture appointments check-calendar
    """
    from nurture.engine import calendars

    found = calendars.Calendars.of(state.settings)
    if found.caldav is None or found.booking is None:
        raise NurtureError("no [availability.caldav] in nurture.toml")
    now = datetime.now(UTC)
    try:
        name = found.caldav.check()
        busy = found.busy(now)
    except ChannelError as error:
        raise NurtureError(str(error)) from None
    horizon = format_duration(found.booking.availability.horizon)
    if json:
        print_json({"calendar": name, "busy": [{"start": s, "end": e} for s, e in busy]})
        return
    note(f"✓ {name}: {plural(len(busy), 'busy period')} in the next {horizon}")
    for start, end in busy:
        print(f"{start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} UTC")


@app.command("sync-calendar")
def sync_calendar(json: JSON = False) -> None:
    """Send the invitations and write the calendar events not sent or written yet (the daemon
    does so on every tick).

    \b
    Examples:
      nurture appointments sync-calendar
    """
    _sync(json)
