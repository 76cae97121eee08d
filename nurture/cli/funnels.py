"""`nurture funnels ...`: assign and unassign sequences (in bulk), list funnels."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from nurture.cli.context import state
from nurture.cli.options import JSON
from nurture.cli.output import out, print_json
from nurture.cli.plan import show_plan
from nurture.errors import NurtureError
from nurture.spec.names import slugify

if TYPE_CHECKING:  # the funnels service loads SQLAlchemy: imported where a command runs
    from sqlmodel import Session

    from nurture.project.plan import Plan

app = typer.Typer(help="Funnels (lead sources) and the sequences they offer.", no_args_is_help=True)
SEQUENCES = Annotated[
    list[str], typer.Option("--sequence", "-s", help="A sequence (repeat for more).")
]
FUNNELS = Annotated[list[str], typer.Option("--funnel", "-f", help="A funnel (repeat for more).")]
CHANGED_JSON = Annotated[
    bool, typer.Option("--json", help="Print these funnels as `funnels list --json` does.")
]


@app.command()
def assign(
    split_funnel: Annotated[
        str | None, typer.Argument(metavar="[FUNNEL]", help="With --split: the funnel to split.")
    ] = None,
    sequence: Annotated[
        list[str] | None, typer.Option("--sequence", "-s", help="A sequence (repeat for more).")
    ] = None,
    funnel: Annotated[
        list[str] | None, typer.Option("--funnel", "-f", help="A funnel (repeat for more).")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="sequence=weight,...: divide FUNNEL's new leads between these sequences by "
            "weight (each lead drawn once, sticky); the others leave the split.",
        ),
    ] = None,
    json: CHANGED_JSON = False,
) -> None:
    """Assign every given sequence to every given funnel (edits the files and applies).

    \b
    Examples:
      nurture funnels assign -s warm-lead-welcome -s cold-lead-warming -f instagram-ads
      nurture funnels assign webinar --split warm-lead-welcome=50,cold-lead-warming=50
    """
    from nurture.project import funnels as service
    from nurture.project.layout import Project

    now, project = datetime.now(UTC), Project.from_settings(state.settings)
    if split is not None or split_funnel is not None:
        if split is None or split_funnel is None or sequence or funnel:
            raise NurtureError("a split is `nurture funnels assign FUNNEL --split a=50,b=50`")
        weights = service.parse_split(split)
        with state.session(write=True) as session:
            result = service.split(session, project, split_funnel, weights, now)
            _changed(session, result, [split_funnel], json)
        return
    if not funnel:
        raise NurtureError("name at least one funnel (--funnel), or split one: FUNNEL --split")
    with state.session(write=True) as session:
        result = service.assign(session, project, sequence or [], funnel, now)
        _changed(session, result, funnel, json)


@app.command()
def unassign(sequence: SEQUENCES, funnel: FUNNELS, json: CHANGED_JSON = False) -> None:
    """Remove every given funnel from every given sequence.

    \b
    Examples:
      nurture funnels unassign -s cold-lead-warming -f instagram-ads --json
    """
    from nurture.project import funnels as service
    from nurture.project.layout import Project

    with state.session(write=True) as session:
        result = service.unassign(
            session, Project.from_settings(state.settings), sequence, funnel, datetime.now(UTC)
        )
        _changed(session, result, funnel, json)


def _changed(session: "Session", result: "Plan", funnels: list[str], json: bool) -> None:
    """The funnels changed, as `funnels list --json` shows them, or the plan applied."""
    from nurture.project import funnels as service

    if not json:
        show_plan(result, json=False)
        return
    named = {slugify(name) for name in funnels}
    print_json([row for row in service.funnel_table(session) if row["slug"] in named])


@app.command("list")
def list_(json: JSON = False) -> None:
    """Every funnel with its sequences, best first.

    \b
    Examples:
      nurture funnels list
      nurture funnels list --json
    """
    from nurture.project import funnels as service

    with state.session() as session:
        rows = service.funnel_table(session)
    if json:
        print_json(rows)
        return
    table = Table("funnel", "sequences (priority)")
    for row in rows:
        offered = ", ".join(
            f"{s['name']} ({s['priority']})"
            + ("" if s["active"] else " [inactive]")
            + (f" split {s['split']}" if s["split"] else "")
            for s in row["sequences"]
        )
        table.add_row(escape(row["name"]), escape(offered or "(none)"))
    out.print(table)
