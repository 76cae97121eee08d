"""`nurture enrollments ...`: list enrollments, control them by hand, settle uncertain sends."""

import getpass
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from nurture.cli.context import state
from nurture.cli.options import JSON
from nurture.cli.output import note, out, plural, print_json, print_result
from nurture.errors import Aborted

if TYPE_CHECKING:  # the engine loads SQLAlchemy: imported where a command runs
    from nurture.engine.delivery import settle

app = typer.Typer(
    help="Leads in sequences: list, advance, pause, resume, stop, settle.", no_args_is_help=True
)
ID = Annotated[int, typer.Argument(help="The enrollment id.")]
CHANGED_JSON = Annotated[
    bool, typer.Option("--json", help="Print the enrollment as `enrollments list --json` does.")
]


@app.command("list")
def list_(
    sequence: Annotated[
        str | None, typer.Option("--sequence", "-s", help="Only this sequence.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only this status (active, unknown...).")
    ] = None,
    json: JSON = False,
) -> None:
    """Enrollments, most recent first.

    \b
    Examples:
      nurture enrollments list --status active
      nurture enrollments list -s warm-lead-welcome --json
    """
    from nurture.engine import control

    with state.session() as session:
        rows = control.list_enrollments(session, sequence=sequence, status=status)
    if json:
        print_json(rows)
        return
    table = Table("id", "lead", "sequence", "v", "status", "step", "next run (UTC)", "note")
    for row in rows:
        due = f"{row['next_run_at']:%Y-%m-%d %H:%M}" if row["next_run_at"] else ""
        table.add_row(
            str(row["id"]),
            escape(row["lead"]),
            escape(row["sequence"]),
            str(row["version"]),
            row["status"],
            row["step_id"] or "",
            due,
            escape(row["exit_reason"] or ""),
        )
    out.print(table)


def _control(action: str, enrollment_id: int, json: bool) -> None:
    """`control.advance` (or pause, resume, stop) on the enrollment, and what it did."""
    from nurture.engine import control  # SQLAlchemy: not for `enrollments --help`

    with state.session(write=True) as session:
        enrollment = getattr(control, action)(session, enrollment_id, datetime.now(UTC))
        message = f"enrollment {enrollment_id}: {enrollment.status} (step {enrollment.step_id})"
        print_result(control.enrollment_row(session, enrollment), json=json, message=message)


@app.command()
def advance(enrollment_id: ID, json: CHANGED_JSON = False) -> None:
    """Run the next step now (where the sequence allows manual advance).

    \b
    Examples:
      nurture enrollments advance 12
    """
    _control("advance", enrollment_id, json)


@app.command()
def pause(enrollment_id: ID, json: CHANGED_JSON = False) -> None:
    """Hold an enrollment where it is.

    \b
    Examples:
      nurture enrollments pause 12 --json
    """
    _control("pause", enrollment_id, json)


@app.command()
def resume(enrollment_id: ID, json: CHANGED_JSON = False) -> None:
    """Resume a paused enrollment, or an unknown one after you checked the provider.

    \b
    Examples:
      nurture enrollments resume 12
    """
    _control("resume", enrollment_id, json)


@app.command()
def stop(enrollment_id: ID, json: CHANGED_JSON = False) -> None:
    """End an enrollment for good.

    \b
    Examples:
      nurture enrollments stop 12
    """
    _control("stop", enrollment_id, json)


@app.command("settle")
def settle_(
    decision: Annotated[
        str,
        typer.Option(
            "--as",
            help="sent: it went out, move on to the next step; resend: send it again now; "
            "stop: end the enrollment.",
        ),
    ],
    sequence: Annotated[
        str | None, typer.Option("--sequence", "-s", help="Only this sequence (name or slug).")
    ] = None,
    step: Annotated[str | None, typer.Option("--step", help="Only sends of this step id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only sends started since then (7d, 12h or a date).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only sends started before then.")] = None,
    enrollment: Annotated[
        list[int] | None, typer.Option("--enrollment", "-e", help="Only this enrollment (repeat).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: JSON = False,
) -> None:
    """Decide in bulk what happened to sends whose fate is unclear (enrollments `unknown`).

    \b
    Examples:
      nurture enrollments settle --as sent --since 1d
      nurture enrollments settle --as resend -e 12 --yes
    """
    from nurture.engine.delivery import settle
    from nurture.rules.periods import Window

    now = datetime.now(UTC)
    filters = settle.Filters(
        sequence, step, Window.parse(since, until, now), tuple(enrollment or ())
    )
    with state.session() as session:
        planned = settle.plan(session, decision, filters)
    if not planned.sends:
        if json:
            print_json({"plan": planned.to_dict(), "settled": None})
        note("nothing to settle: no send waits for a decision" + _filtered(filters))
        return
    if not json:
        _show_plan(planned)
    _confirm(planned, yes)
    with state.session(write=True) as session:
        outcome = settle.settle(session, planned, now, _who(), state.settings.timezone)
    if json:
        print_json({"plan": planned.to_dict(), "settled": outcome.to_dict()})
    else:
        _show_outcome(outcome)


def _filtered(filters: "settle.Filters") -> str:
    from nurture.rules.periods import Window

    chosen = filters.sequence or filters.step or filters.enrollments
    return " among those chosen" if chosen or filters.window != Window() else ""


def _show_plan(planned: "settle.Plan") -> None:
    data = planned.to_dict()
    oldest, newest = _when(data["oldest"]), _when(data["newest"])
    started = f"at {oldest}" if oldest == newest else f"between {oldest} and {newest}"
    out.print(f"{plural(data['count'], 'send')} of unclear fate, started {started} UTC:")
    table = Table("sequence", "step", "sends", "oldest (UTC)", "newest (UTC)")
    for group in data["groups"]:
        cells = (group["sequence"], group["step"] or "", str(group["count"]))
        table.add_row(*map(escape, cells), _when(group["oldest"]), _when(group["newest"]))
    out.print(table)
    out.print(f"--as {planned.decision} will {data['effect']}.")


def _confirm(planned: "settle.Plan", yes: bool) -> None:
    if yes:
        return
    count = plural(len(planned.sends), "send")
    if not _terminal():
        raise Aborted(f"refusing to settle {count} without a terminal to confirm on; add --yes")
    if not typer.confirm(f"Settle {count} as {planned.decision}?", err=True):
        raise Aborted("nothing settled")


def _terminal() -> bool:
    return sys.stdin.isatty()


def _show_outcome(outcome: "settle.Outcome") -> None:
    where = ", ".join(f"{count} {status}" for status, count in sorted(outcome.statuses.items()))
    note(f"settled {plural(outcome.settled, 'send')} as {outcome.decision} ({where or 'none'})")
    if outcome.gone:
        note(
            f"left alone: {plural(outcome.gone, 'enrollment')} no longer waiting "
            "(resumed, stopped or settled since the plan)"
        )


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else ""


def _who() -> str:
    """Who settles, for the log: the user running the command."""
    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):  # no user name in this environment
        return "cli"
