"""`nurture enrollments ...`: list enrollments and control them by hand."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from nurture import control
from nurture.cli.context import state
from nurture.cli.output import out, print_json

app = typer.Typer(
    help="Leads in sequences: list, advance, pause, resume, stop.", no_args_is_help=True
)
ID = Annotated[int, typer.Argument(help="The enrollment id.")]


@app.command("list")
def list_(
    sequence: Annotated[
        str | None, typer.Option("--sequence", "-s", help="Only this sequence.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only this status (active, unknown...).")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Enrollments, most recent first."""
    with state.session() as session:
        rows = control.list_enrollments(session, sequence=sequence, status=status)
    if json:
        print_json(rows)
        return
    table = Table("id", "lead", "sequence", "v", "status", "step", "next run (UTC)", "note")
    for row in rows:
        due = f"{row['next_run_at']:%Y-%m-%d %H:%M}" if row["next_run_at"] else ""
        table.add_row(
            str(row["id"]), escape(row["lead"]), escape(row["sequence"]), str(row["version"]),
            row["status"], row["step_id"] or "", due, escape(row["exit_reason"] or ""),
        )  # fmt: skip
    out.print(table)


def _control(action: Callable, enrollment_id: int) -> None:
    with state.session(write=True) as session:
        enrollment = action(session, enrollment_id, datetime.now(UTC))
        status, step = enrollment.status, enrollment.step_id
    out.print(f"enrollment {enrollment_id}: {status} (step {step})")


@app.command()
def advance(enrollment_id: ID) -> None:
    """Run the next step now (where the sequence allows manual advance)."""
    _control(control.advance, enrollment_id)


@app.command()
def pause(enrollment_id: ID) -> None:
    """Hold an enrollment where it is."""
    _control(control.pause, enrollment_id)


@app.command()
def resume(enrollment_id: ID) -> None:
    """Resume a paused enrollment, or an unknown one after you checked the provider."""
    _control(control.resume, enrollment_id)


@app.command()
def stop(enrollment_id: ID) -> None:
    """End an enrollment for good."""
    _control(control.stop, enrollment_id)
