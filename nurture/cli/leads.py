"""`nurture leads ...`: add (matched and enrolled at once), import, update, convert, list, show."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nurture.cli.context import state
from nurture.cli.output import err, error, note, out, print_json
from nurture.errors import NurtureError

if TYPE_CHECKING:  # the leads service loads SQLAlchemy: imported where a command runs
    from nurture.leads.imports import ImportResult
    from nurture.leads.records import Arrival, LeadRules

app = typer.Typer(help="Leads: add, import, update, convert, list, show.", no_args_is_help=True)

JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LEAD = Annotated[str, typer.Argument(help="The lead's id, external id or email.")]
Name = Annotated[str | None, typer.Option("--name", help="Full name.")]
Email = Annotated[str | None, typer.Option("--email")]
Phone = Annotated[
    str | None, typer.Option("--phone", help="+<country><number>, or set phone_region.")
]
Source = Annotated[str | None, typer.Option("--source")]
Status = Annotated[str | None, typer.Option("--status", help="A conversion status converts.")]
Temperature = Annotated[str | None, typer.Option("--temperature")]
Score = Annotated[int | None, typer.Option("--score", help="0-100.")]
Tags = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat for more).")]
Zone = Annotated[str | None, typer.Option("--tz", help="IANA time zone, e.g. Europe/Madrid.")]
Fields = Annotated[list[str] | None, typer.Option("--field", help="key=value (repeat for more).")]
ExternalId = Annotated[str | None, typer.Option("--external-id", help="Your id for the lead.")]


def _fields(pairs: list[str] | None) -> dict[str, str]:
    out_: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise NurtureError(f"--field wants key=value, got {pair!r}")
        out_[key.strip()] = value
    return out_


def _rules() -> "LeadRules":
    from nurture.leads.records import LeadRules

    return LeadRules.from_settings(state.settings)


@app.command()
def add(
    funnel: Annotated[
        str, typer.Option("--funnel", "-f", help="The funnel the lead came through.")
    ],
    name: Annotated[str, typer.Option("--name", help="Full name.")],
    email: Email = None,
    phone: Phone = None,
    source: Source = None,
    status: Status = None,
    temperature: Temperature = None,
    score: Score = None,
    tag: Tags = None,
    tz: Zone = None,
    field: Fields = None,
    external_id: ExternalId = None,
    json: JSON = False,
) -> None:
    """Add a lead (or update the one with this external id or email), match and enroll it."""
    from nurture.leads import records as service
    from nurture.leads.records import LeadInput

    data = LeadInput(
        name, email, phone, source, status, temperature, score, tag, tz, _fields(field), external_id
    )
    with state.session(write=True) as session:
        arrival = service.add_lead(session, data, funnel, datetime.now(UTC), _rules())
        shown = _arrival(arrival)
    if json:
        print_json(shown)
        return
    out.print(escape(f"{'Added' if arrival.created else 'Updated'} lead {shown['lead']}."))
    out.print(escape(shown["message"]))


def _arrival(arrival: "Arrival") -> dict[str, Any]:
    lead, decision, enrollment = arrival.lead, arrival.decision, arrival.enrollment
    data = {"id": lead.id, "created": arrival.created, "reason": decision.reason}
    data["sequence"] = winner = decision.winner.name if decision.winner else None
    data["lead"] = f"{lead.id} {lead.name}" + (f" <{lead.email}>" if lead.email else "")
    if enrollment is None:
        data["message"] = f"Not enrolled: {decision.reason}."
        return data
    data |= {"step": enrollment.step_id, "next_run_at": enrollment.next_run_at}
    data["message"] = (
        f"Enrolled in {winner} ({decision.reason}); "
        f"first step {enrollment.step_id} at {enrollment.next_run_at:%Y-%m-%d %H:%M} UTC."
    )
    return data


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A CSV (with a header) or JSON-lines file.")],
    funnel: Annotated[
        str | None, typer.Option("--funnel", "-f", help="For rows without a funnel column.")
    ] = None,
    json: JSON = False,
) -> None:
    """Import leads: upsert by external id or email; new leads are matched and enrolled."""
    from nurture.leads.imports import import_leads

    with state.session(write=True) as session, _progress_bar(json) as progress:
        result = import_leads(
            session, file, datetime.now(UTC), _rules(), funnel=funnel, progress=progress
        )
    if json:
        print_json(result.to_dict())
    else:
        _show_import(result)
    if result.errors:
        raise typer.Exit(1)


@contextmanager
def _progress_bar(quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr (none with --json or without a terminal)."""
    if quiet or not err.is_terminal:
        yield None
        return
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("import", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _show_import(result: "ImportResult") -> None:
    for problem in result.errors:
        error(escape(f"row {problem.row}: {problem.message}"))
    out.print(
        f"{result.rows} rows: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged, {len(result.errors)} rejected; "
        f"{result.enrolled} enrolled."
    )


@app.command()
def update(
    lead: LEAD,
    name: Name = None,
    email: Email = None,
    phone: Phone = None,
    source: Source = None,
    status: Status = None,
    temperature: Temperature = None,
    score: Score = None,
    tag: Tags = None,
    untag: Annotated[list[str] | None, typer.Option("--untag", help="Remove a tag.")] = None,
    tz: Zone = None,
    field: Fields = None,
    external_id: ExternalId = None,
) -> None:
    """Change a lead: tags add (--untag removes), fields merge; a conversion status converts."""
    from nurture.leads import records as service
    from nurture.leads.records import LeadInput

    data = LeadInput(
        name, email, phone, source, status, temperature, score, tag, tz, _fields(field), external_id
    )
    if not untag and all(value in (None, {}, []) for value in vars(data).values()):
        raise NurtureError(
            "nothing to change: give --status, --score, --temperature, --tag, --untag, --field..."
        )
    with state.session(write=True) as session:
        row = service.update_lead(session, lead, data, datetime.now(UTC), _rules(), untag or [])
        converted = row.converted_at is not None
        message = f"Updated lead {row.id} {row.name}" + (" (converted)" if converted else "") + "."
    note(escape(message))


@app.command()
def convert(lead: LEAD) -> None:
    """Mark a lead converted: its enrollments that stop on conversion stop now."""
    from nurture.leads import records as service

    with state.session(write=True) as session:
        row = service.find_lead(session, lead)
        stopped = service.convert(session, row, datetime.now(UTC), _rules())
        message = f"Converted lead {row.id} {row.name}; stopped {len(stopped)} enrollment(s)."
    note(escape(message))


@app.command("list")
def list_(
    funnel: Annotated[str | None, typer.Option("--funnel", "-f")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    source: Annotated[str | None, typer.Option("--source")] = None,
    tag: Annotated[str | None, typer.Option("--tag")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    json: JSON = False,
) -> None:
    """Leads, newest first."""
    from nurture.leads import records as service

    with state.session() as session:
        rows = service.list_leads(
            session, funnel=funnel, status=status, source=source, tag=tag, limit=limit
        )
    if json:
        print_json(rows)
        return
    table = Table("id", "name", "email", "funnel", "status", "score", "tags")
    for row in rows:
        cells = (row["id"], row["name"], row["email"], row["funnel"], row["status"], row["score"])
        table.add_row(*(escape(str(c or "")) for c in cells), escape(", ".join(row["tags"])))
    out.print(table)


@app.command()
def show(lead: LEAD, json: JSON = False) -> None:
    """A lead, its enrollments, every execution and the next due step."""
    from nurture.leads import records as service

    with state.session() as session:
        data = service.lead_details(session, service.find_lead(session, lead))
    if json:
        print_json(data)
        return
    skip = {"enrollments", "executions", "first_name", "next"}
    for key, value in data.items():
        if key not in skip and value not in (None, [], {}):
            out.print(escape(f"{key:>13}: {_cell(value)}"))
    _table("enrollments", data["enrollments"], ENROLLMENT_COLUMNS)
    _table("executions", data["executions"], EXECUTION_COLUMNS)
    upcoming = data["next"]
    if upcoming:
        step, sequence, at = upcoming["step_id"], upcoming["sequence"], upcoming["next_run_at"]
        out.print(escape(f"next: {step} of {sequence} at {_cell(at)} UTC"))


ENROLLMENT_COLUMNS = (
    "id",
    "sequence",
    "version",
    "status",
    "step_id",
    "next_run_at",
    "exit_reason",
)
EXECUTION_COLUMNS = ("sequence", "step_id", "attempt", "status", "due_at", "finished_at", "error")


def _table(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    if not rows:
        out.print(f"no {title}")
        return
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(escape(_cell(row[c])) for c in columns))
    out.print(table)


def _cell(value: object) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items())
    return "" if value is None else str(value)
