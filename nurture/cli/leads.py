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
from nurture.cli.options import JSON, LEAD, LEAD_JSON
from nurture.cli.output import (
    err,
    error,
    note,
    out,
    plural,
    print_json,
    print_result,
    warning,
)
from nurture.errors import NurtureError

if TYPE_CHECKING:  # the leads service loads SQLAlchemy: imported where a command runs
    from nurture.leads.imports import ImportResult
    from nurture.leads.records import Arrival, LeadRules
    from nurture.store.tables import Lead

app = typer.Typer(help="Leads: add, import, update, convert, list, show.", no_args_is_help=True)

ADDED_JSON = Annotated[
    bool,
    typer.Option(
        "--json", help="Print the lead as `leads show --json` does, with created and decision."
    ),
]
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
At = Annotated[
    str | None,
    typer.Option(
        "--at",
        metavar="WHEN",
        help="When it happened, for a backfill: ISO 8601 (2026-03-06T17:00); without an offset "
        "in the lead's time zone, else the project's. Delays count from it. Default: now.",
    ),
]


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
    at: At = None,
    json: ADDED_JSON = False,
) -> None:
    """Add a lead (or update the one with this external id or email), match and enroll it.

    \b
    Examples:
      nurture leads add --funnel website-form --name 'Ana Ruiz' --email ana@example.com --score 45
      nurture leads add -f referrals --name Bo --tag vip --field goal=strength --json
    """
    from nurture.leads import records as service
    from nurture.leads.identity import clash_text
    from nurture.leads.records import LeadInput
    from nurture.leads.when import happened_at

    data = LeadInput(
        name, email, phone, source, status, temperature, score, tag, tz, _fields(field), external_id
    )
    when = happened_at(at, tz or _rules().default_zone, datetime.now(UTC))
    with state.session(write=True) as session:
        arrival = service.add_lead(session, data, funnel, when, _rules())
        shown = service.lead_details(session, arrival.lead) | _arrival(arrival)
        if arrival.clashes and not json:
            warning(clash_text(arrival.lead.id, arrival.clashes))
        print_result(shown, json=json, message=_arrived(arrival))


def _arrival(arrival: "Arrival") -> dict[str, Any]:
    """What `leads add --json` says beyond the lead: was it new, which sequence and why."""
    winner = arrival.decision.winner
    decision = {"sequence": winner.name if winner else None, "reason": arrival.decision.reason}
    clashes = [clash.to_dict() for clash in arrival.clashes]
    return {"created": arrival.created, "decision": decision, "clashes": clashes}


def _arrived(arrival: "Arrival") -> str:
    lead, decision, enrollment = arrival.lead, arrival.decision, arrival.enrollment
    said = f"{'Added' if arrival.created else 'Updated'} lead {named(lead)}"
    said += f" <{lead.email}>." if lead.email else "."
    if enrollment is None or decision.winner is None:
        return f"{said}\nNot enrolled: {decision.reason}."
    return (
        f"{said}\nEnrolled in {decision.winner.name} ({decision.reason}); "
        f"first step {enrollment.step_id} at {enrollment.next_run_at:%Y-%m-%d %H:%M} UTC."
    )


def named(lead: "Lead") -> str:
    return f"{lead.id} {lead.name}"


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help="A CSV (with a header) or JSON-lines file; - reads stdin.")
    ],
    funnel: Annotated[
        str | None, typer.Option("--funnel", "-f", help="For rows without a funnel column.")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="WHEN",
            help="When the rows without a created_at (or at) column of their own arrived: ISO "
            "8601, without an offset in the project's time zone (a row's: in its lead's). "
            "Default: now.",
        ),
    ] = None,
    json: JSON = False,
) -> None:
    """Import leads: upsert by external id or email; new leads are matched and enrolled.

    \b
    Examples:
      nurture leads import leads.csv --funnel website-form
      nurture leads import old-tool.csv --at 2026-03-06T17:00   # rows without created_at
      cat leads.jsonl | nurture leads import - --json
    """
    from nurture.leads.imports import import_leads
    from nurture.leads.when import happened_at

    now = datetime.now(UTC)
    when = happened_at(at, _rules().default_zone, now)
    with state.session(write=True) as session, _progress_bar(json) as progress:
        result = import_leads(
            session, file, now, _rules(), funnel=funnel, progress=progress, at=when
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
        error(f"row {problem.row}: {problem.message}")
    for said in result.warnings:
        warning(f"row {said.row}: {said.message}")
    note(
        f"{plural(result.rows, 'row')}: {result.created} created, {result.updated} updated, "
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
    at: At = None,
    json: LEAD_JSON = False,
) -> None:
    """Change a lead: tags add (--untag removes), fields merge; a conversion status converts.

    \b
    Examples:
      nurture leads update ana@example.com --score 80 --tag vip
      nurture leads update 3 --status Converted --json
    """
    from nurture.leads import records as service
    from nurture.leads.records import LeadInput
    from nurture.leads.when import happened_at

    data = LeadInput(
        name, email, phone, source, status, temperature, score, tag, tz, _fields(field), external_id
    )
    if not untag and all(value in (None, {}, []) for value in vars(data).values()):
        raise NurtureError(
            "nothing to change: give --status, --score, --temperature, --tag, --untag, --field..."
        )
    with state.session(write=True) as session:
        zone = service.find_lead(session, lead).timezone or _rules().default_zone
        when = happened_at(at, zone, datetime.now(UTC))
        row = service.update_lead(session, lead, data, when, _rules(), untag or [])
        converted = " (converted)" if row.converted_at is not None else ""
        print_result(
            service.lead_details(session, row),
            json=json,
            message=f"Updated lead {named(row)}{converted}.",
        )


@app.command()
def convert(lead: LEAD, at: At = None, json: LEAD_JSON = False) -> None:
    """Mark a lead converted: its enrollments that stop on conversion stop now (or --at).

    \b
    Examples:
      nurture leads convert ana@example.com
      nurture leads convert ana@example.com --at 2026-03-09T10:30
    """
    from nurture.leads import records as service
    from nurture.leads.when import happened_at

    with state.session(write=True) as session:
        row = service.find_lead(session, lead)
        when = happened_at(at, row.timezone or _rules().default_zone, datetime.now(UTC))
        stopped = service.convert(session, row, when, _rules())
        print_result(
            service.lead_details(session, row),
            json=json,
            message=f"Converted lead {named(row)}; stopped {plural(len(stopped), 'enrollment')}.",
        )


@app.command("list")
def list_(
    funnel: Annotated[str | None, typer.Option("--funnel", "-f")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    source: Annotated[str | None, typer.Option("--source")] = None,
    tag: Annotated[str | None, typer.Option("--tag")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    json: JSON = False,
) -> None:
    """Leads, newest first.

    \b
    Examples:
      nurture leads list --funnel website-form --limit 10
      nurture leads list --tag vip --json
    """
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
        table.add_row(*(escape(_cell(c)) for c in cells), escape(", ".join(row["tags"])))
    out.print(table)


@app.command()
def show(lead: LEAD, json: JSON = False) -> None:
    """A lead, its enrollments, every execution and the next due step.

    \b
    Examples:
      nurture leads show ana@example.com
      nurture leads show 3 --json
    """
    from nurture.leads import records as service

    scoring = state.settings.engagement.scoring()
    with state.session() as session:
        row = service.find_lead(session, lead)
        data = service.lead_details(session, row, datetime.now(UTC), scoring)
    if json:
        print_json(data)
        return
    skip = {"enrollments", "executions", "first_name", "next", "engagement", "replies"}
    for key, value in data.items():
        if key not in skip and value not in (None, [], {}):
            out.print(escape(f"{key:>13}: {_cell(value)}"))
    _table("enrollments", data["enrollments"], ENROLLMENT_COLUMNS)
    _table("executions", data["executions"], EXECUTION_COLUMNS)
    _table("engagement", data["engagement"], ENGAGEMENT_COLUMNS)
    if data["replies"]:
        _table("replies", data["replies"], ("received_at", "channel", "text", "stopped"))
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
ENGAGEMENT_COLUMNS = ("at", "kind", "step_id", "link")
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
