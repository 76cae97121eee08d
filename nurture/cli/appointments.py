"""`nurture appointments`: the calls schedule_appointment steps booked, and what became of them."""

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from nurture.cli.context import state
from nurture.cli.output import out, print_json, print_result
from nurture.errors import NurtureError

JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
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

    settings = state.settings
    booking = settings.booking
    zone = booking.zone if booking is not None else settings.timezone
    start = _when(when, zone)
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


def _when(text: str, zone: str) -> datetime:
    from zoneinfo import ZoneInfo

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise NurtureError(
            f"WHEN {text!r} is not an ISO 8601 time (e.g. 2026-12-09T10:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(UTC)
