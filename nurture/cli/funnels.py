"""`nurture funnels ...`: assign and unassign sequences (in bulk), list funnels."""

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from nurture.cli.context import state
from nurture.cli.output import out, print_json
from nurture.cli.plan import show_plan
from nurture.project import funnels as service
from nurture.project.layout import Project

app = typer.Typer(help="Funnels (lead sources) and the sequences they offer.", no_args_is_help=True)
SEQUENCES = Annotated[
    list[str], typer.Option("--sequence", "-s", help="A sequence (repeat for more).")
]
FUNNELS = Annotated[list[str], typer.Option("--funnel", "-f", help="A funnel (repeat for more).")]


@app.command()
def assign(sequence: SEQUENCES, funnel: FUNNELS) -> None:
    """Assign every given sequence to every given funnel (edits the files and applies)."""
    with state.session(write=True) as session:
        result = service.assign(
            session, Project.from_settings(state.settings), sequence, funnel, datetime.now(UTC)
        )
    show_plan(result, json=False)


@app.command()
def unassign(sequence: SEQUENCES, funnel: FUNNELS) -> None:
    """Remove every given funnel from every given sequence."""
    with state.session(write=True) as session:
        result = service.unassign(
            session, Project.from_settings(state.settings), sequence, funnel, datetime.now(UTC)
        )
    show_plan(result, json=False)


@app.command("list")
def list_(json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every funnel with its sequences, best first."""
    with state.session() as session:
        rows = service.funnel_table(session)
    if json:
        print_json(rows)
        return
    table = Table("funnel", "sequences (priority)")
    for row in rows:
        offered = ", ".join(
            f"{s['name']} ({s['priority']})" + ("" if s["active"] else " [inactive]")
            for s in row["sequences"]
        )
        table.add_row(escape(row["name"]), escape(offered or "(none)"))
    out.print(table)
