"""`nurture test`: dry-run a sequence for a lead on a simulated clock, or run every `tests:` case."""

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from nurture.cli.context import state
from nurture.cli.output import note, out, print_json
from nurture.errors import ChannelError, NurtureError
from nurture.spec.cases import CaseLead
from nurture.spec.diagnostics import error_message
from nurture.spec.durations import parse_duration
from nurture.spec.times import PAST_THE_CALENDAR, check_span, check_time
from nurture.spec.window import check_time_zone

if TYPE_CHECKING:  # the dry run loads SQLAlchemy and the engine: imported where it runs
    from nurture.simulate.dryrun import DryRun, Project

LEAD_HELP = (
    "A YAML or JSON file with the lead (name, source, status, score, fields...), - for stdin."
)


def test(
    sequence: Annotated[
        str | None, typer.Argument(help="The sequence (name or slug); none: the funnel's choice.")
    ] = None,
    lead: Annotated[str | None, typer.Option("--lead", help=LEAD_HELP)] = None,
    lead_field: Annotated[
        list[str] | None,
        typer.Option("--lead-field", help="key=value (score=45, tags=a,b; others: custom fields)."),
    ] = None,
    funnel: Annotated[str | None, typer.Option("--funnel", "-f", help="The lead's funnel.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="ISO time (default: now).")] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="The lead's IANA time zone.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Stop after e.g. 3d.")] = None,
    event: Annotated[
        list[str] | None, typer.Option("--event", help="'+2d convert', '+4h fail=send_email'...")
    ] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            "--variant", help="step=variant: the variant the lead gets (repeat for more)."
        ),
    ] = None,
    calendar: Annotated[
        bool,
        typer.Option(
            "--calendar",
            help="Also keep to the coach's real calendar (availability.caldav in "
            "nurture.toml): auto bookings skip its busy times, read over CalDAV.",
        ),
    ] = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write a JUnit XML report.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Dry-run a sequence for a lead, or run the `tests:` cases (all of them without arguments).

    \b
    Examples:
      nurture test                      # every tests: case
      nurture test 'Warm Lead Welcome' --lead-field name=Ana --lead-field score=45
      nurture test --funnel website-form --lead lead.yaml --until 7d
      echo 'name: Ana' | nurture test --funnel website-form --lead -
      nurture test 'Warm Lead Welcome' --lead-field name=Ana --variant guide=b
      nurture test 'Discovery Call' --lead-field name=Ana --calendar
    """
    from nurture.simulate.dryrun import Scenario, dry_run, lead_input
    from nurture.simulate.events import InvalidEvent

    if lead is None and not lead_field:
        if funnel or event or start or until or tz or variant or calendar:
            raise NurtureError("give the lead: --lead FILE (or -) or --lead-field key=value")
        _cases(_project(), sequence, junit, json)
        return
    project = _project(calendar)
    if junit is not None:
        raise NurtureError("--junit reports test cases: run `nurture test` without a lead")
    scenario = Scenario(
        lead=lead_input(_lead(lead, lead_field or []), _zone(tz)),
        start=_start(start),
        sequence=sequence,
        funnel=funnel,
        events=tuple(event or []),
        until=_until(until),
        variants=_variants(variant or []),
    )
    began = time.perf_counter()
    try:
        run = dry_run(project, scenario)
    except InvalidEvent as error:  # the event's text, then the problem: name the option
        raise NurtureError(f"--event {error}") from None
    except OverflowError:  # a sequence's durations (a retry delay) are not bounded: the clock is
        raise NurtureError(PAST_THE_CALENDAR) from None
    _show_run(run, time.perf_counter() - began, json)


def _project(calendar: bool = False) -> "Project":
    from nurture.leads.records import LeadRules
    from nurture.project.layout import Project as ProjectFiles
    from nurture.simulate.dryrun import Project

    settings = state.settings
    files = ProjectFiles.from_settings(settings).files()
    rules = LeadRules.from_settings(settings)
    coach, caps = settings.coach.model_dump(), settings.caps.rules()
    calendars = _calendars() if calendar else None
    booking = settings.booking
    return Project(
        files, settings.project_dir, rules, coach, caps=caps, booking=booking, calendars=calendars
    )


def _calendars() -> Any:
    """The coach's CalDAV calendar, reached once before the run (its busy times read as the
    dry run books); a clear error when there is none or it cannot be reached."""
    from nurture.engine.calendars import Calendars

    found = Calendars.of(state.settings)  # no channels: the dry run sends no invitation
    if found.caldav is None:
        raise NurtureError(
            "--calendar reads the coach's calendar: add [availability.caldav] to nurture.toml "
            "(see docs/guides/appointments.md)"
        )
    try:
        found.caldav.check()
    except ChannelError as error:
        raise NurtureError(f"--calendar: {error}") from None
    return found


def _cases(project: "Project", sequence: str | None, junit: Path | None, json: bool) -> None:
    from nurture.cli import timeline_view as view
    from nurture.simulate.cases import run_cases
    from nurture.simulate.junit import write_junit

    began = time.perf_counter()
    results = run_cases(project, sequence)
    if junit is not None:
        write_junit(junit, results)
    if json:
        print_json([result.to_dict() for result in results])
    else:
        view.show_cases(results, time.perf_counter() - began)
    if not all(result.passed for result in results):
        raise typer.Exit(1)


def _show_run(run: "DryRun", seconds: float, json: bool) -> None:
    from nurture.cli import timeline_view as view

    if json:
        print_json(run.to_dict() | {"seconds": round(seconds, 4)})
        return
    view.show_decision(run)
    if run.sequence is not None:
        out.print(view.timeline_table(run))
    note(view.summary(run, seconds))


def _variants(pairs: list[str]) -> tuple[tuple[str, str], ...]:
    pinned = []
    for pair in pairs:
        step_id, sep, variant_id = (part.strip() for part in pair.partition("="))
        if not sep or not step_id or not variant_id:
            raise NurtureError(f"--variant wants step=variant, got {pair!r}")
        pinned.append((step_id, variant_id))
    return tuple(pinned)


def _lead(source: str | None, pairs: list[str]) -> CaseLead:
    data: dict[str, Any] = _read_lead(source) if source else {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise NurtureError(f"--lead-field wants key=value, got {pair!r}")
        key = key.strip()
        if key == "tags":
            data[key] = [tag.strip() for tag in value.split(",") if tag.strip()]
        elif key in CaseLead.model_fields or key in _aliases():
            data[key] = value
        else:
            data.setdefault("fields", {})[key.removeprefix("fields.")] = value
    try:
        return CaseLead.model_validate(data)
    except ValidationError as error:
        where = f"--lead {source}" if source else "--lead-field"
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {error_message(e)}" for e in error.errors()
        )
        raise NurtureError(f"{where}: {problems}") from None


def _aliases() -> set[str]:
    return {field.alias for field in CaseLead.model_fields.values() if field.alias}


def _read_lead(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise NurtureError(f"--lead {source}: cannot read it as text: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise NurtureError(f"--lead {source}: not YAML or JSON: {error}") from None
    if not isinstance(data, dict):
        raise NurtureError(f"--lead {source}: expected a mapping of lead fields (name: ...)")
    return data


def _start(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise NurtureError(f"--start {text!r} is not an ISO time (2025-03-03T09:00:00Z)") from None
    try:
        check_time(parsed)
    except ValueError as error:
        raise NurtureError(f"--start {error}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _zone(text: str | None) -> str | None:
    try:
        return check_time_zone(text) if text else None
    except ValueError as error:
        raise NurtureError(f"--tz: {error}") from None


def _until(text: str | None) -> Any:
    try:
        return check_span(parse_duration(text)) if text else None
    except ValueError as error:
        raise NurtureError(f"--until: {error}") from None
