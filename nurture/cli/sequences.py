"""`nurture sequences ...`: list, show, enable, disable, toggle, delete, duplicate, assignments,
templates, new."""

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from nurture.cli.context import state
from nurture.cli.options import JSON
from nurture.cli.output import note, out, print_json
from nurture.cli.plan import show_plan
from nurture.errors import Aborted
from nurture.rules.matching import wanted
from nurture.spec.conditions import StepConditions, TriggerConditions

if TYPE_CHECKING:  # the catalog loads SQLAlchemy: imported where a command runs
    from nurture.project.plan import Plan

app = typer.Typer(
    help="List, show and change sequences (the file and the store together).", no_args_is_help=True
)
NAME = Annotated[str, typer.Argument(help="Sequence name or slug.")]
CHANGED_JSON = Annotated[
    bool, typer.Option("--json", help="Print the sequence as `sequences show --json` does.")
]


@app.command("list")
def list_(
    category: Annotated[
        str | None, typer.Option(help="Only this category (follow_up, follow-up, 'Follow Up').")
    ] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Only active or inactive.")
    ] = None,
    json: JSON = False,
) -> None:
    """The sequences in the store.

    \b
    Examples:
      nurture sequences list
      nurture sequences list --category warm_lead --active --json
    """
    from nurture.project import sequences as catalog

    with state.session() as session:
        rows = catalog.summaries(session, category=category, active=active)
    if json:
        print_json(rows)
        return
    table = Table("name", "category", "active", "priority", "version", "steps", "funnels")
    for row in rows:
        table.add_row(
            escape(row["name"]),
            row["category"],
            _yes(row["active"]),
            str(row["priority"]),
            f"v{row['version']}",
            str(row["steps"]),
            escape(", ".join(row["funnels"])),
        )
    out.print(table)


@app.command()
def show(name: NAME, json: JSON = False) -> None:
    """A sequence: triggers, steps, funnels and versions.

    \b
    Examples:
      nurture sequences show 'Warm Lead Welcome'
      nurture sequences show warm-lead-welcome --json
    """
    from nurture.project import sequences as catalog

    with state.session() as session:
        info = catalog.describe(session, name)
    if json:
        print_json(info)
        return
    _show(info)


def _show(info: dict[str, Any]) -> None:
    definition = info["definition"]
    out.print(
        f"[bold]{escape(info['name'])}[/] v{info['version']} · {info['category']} · "
        f"{'active' if info['active'] else 'inactive'} · priority {info['priority']}"
    )
    if info["description"]:
        out.print(escape(info["description"]))
    out.print(f"funnels: {escape(', '.join(info['funnels']) or '(none)')}")
    triggers = wanted(TriggerConditions.model_validate(definition["trigger_conditions"]))
    out.print(f"triggers: {escape(triggers or '(any lead)')}")
    steps = Table("#", "id", "name", "action", "delay", "conditions", "active", title="steps")
    for index, step in enumerate(definition["steps"], start=1):
        steps.add_row(
            str(index),
            step["id"],
            escape(step["name"]),
            step["action_type"],
            _delay(step),
            escape(_when(step)),
            _yes(step["active"]),
        )
    out.print(steps)
    versions = Table(
        "version", "applied at (UTC)", "fingerprint", "steps", "file", title="versions"
    )
    for version in info["versions"]:
        versions.add_row(
            f"v{version['version']}",
            f"{version['applied_at']:%Y-%m-%d %H:%M}",
            version["fingerprint"],
            str(version["steps"]),
            escape(version["path"] or ""),
        )
    out.print(versions)


def _delay(step: dict[str, Any]) -> str:
    parts = [
        f"{step[f'delay_{unit}']}{unit[0]}"
        for unit in ("days", "hours", "minutes")
        if step[f"delay_{unit}"]
    ]
    return " ".join(parts) or "0"


def _when(step: dict[str, Any]) -> str:
    """The step's conditions, and whether it ends the sequence (`stop: true`)."""
    conditions = wanted(StepConditions.model_validate(step["conditions"] or {}))
    if not step.get("stop"):
        return conditions
    return f"{conditions} → then stops" if conditions else "always; then stops"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _change(action: str, name: str, active: bool | None, json: bool) -> None:
    from nurture.project import sequences as catalog
    from nurture.project.layout import Project

    with state.session(write=True) as session:
        result = catalog.set_active(
            session, Project.from_settings(state.settings), name, active, datetime.now(UTC)
        )
        _changed(result, catalog.describe(session, name) if json else None)
    note(f"{action}: the file and the store agree.")


def _changed(result: "Plan", sequence: dict[str, Any] | None) -> None:
    """The sequence a command changed with --json (`sequence`), else the plan it applied."""
    if sequence is not None:
        print_json(sequence)
    else:
        show_plan(result, json=False)


@app.command()
def enable(name: NAME, json: CHANGED_JSON = False) -> None:
    """Activate a sequence (edits its file and applies it).

    \b
    Examples:
      nurture sequences enable warm-lead-welcome
    """
    _change("enabled", name, True, json)


@app.command()
def disable(name: NAME, json: CHANGED_JSON = False) -> None:
    """Deactivate a sequence: it takes no new leads.

    \b
    Examples:
      nurture sequences disable warm-lead-welcome --json
    """
    _change("disabled", name, False, json)


@app.command()
def toggle(name: NAME, json: CHANGED_JSON = False) -> None:
    """Flip a sequence between active and inactive.

    \b
    Examples:
      nurture sequences toggle warm-lead-welcome
    """
    _change("toggled", name, None, json)


@app.command()
def delete(
    name: NAME,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: Annotated[
        bool, typer.Option("--json", help="Print the sequence deleted, as `sequences show --json`.")
    ] = False,
) -> None:
    """Delete a sequence's file and remove it from the store (its history stays).

    \b
    Examples:
      nurture sequences delete lead-reactivation --yes
    """
    from nurture.project import sequences as catalog
    from nurture.project.layout import Project

    if not yes:
        if not sys.stdin.isatty():
            raise Aborted("refusing to delete without a terminal to confirm on; pass --yes")
        if not typer.confirm(f"Delete sequence {name!r} and its file?", err=True):
            raise Aborted("nothing deleted")
    with state.session(write=True) as session:
        gone = catalog.describe(session, name) if json else None
        result = catalog.delete(
            session, Project.from_settings(state.settings), name, datetime.now(UTC)
        )
        _changed(result, gone)


@app.command()
def duplicate(
    name: NAME,
    new_name: Annotated[str, typer.Argument(help="Name of the copy.")],
    no_apply: Annotated[bool, typer.Option("--no-apply", help="Only write the file.")] = False,
    json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the copy as `sequences show --json` (with --no-apply: its file)."
        ),
    ] = False,
) -> None:
    """Copy a sequence into sequences/NEW_NAME.yaml (inactive) and apply it.

    \b
    Examples:
      nurture sequences duplicate warm-lead-welcome 'Warm Lead Welcome B'
      nurture sequences duplicate warm-lead-welcome Copy --no-apply
    """
    from nurture.project import sequences as catalog
    from nurture.project.layout import Project

    project, now = Project.from_settings(state.settings), datetime.now(UTC)
    if no_apply:
        path, _ = catalog.duplicate(None, project, name, new_name, now)
        if json:
            print_json({"name": new_name, "path": str(path), "applied": False})
    else:
        with state.session(write=True) as session:
            path, result = catalog.duplicate(session, project, name, new_name, now)
            _changed(result, catalog.describe(session, new_name) if json else None)
    note(f"wrote {path} (inactive: enable it with `nurture sequences enable {new_name!r}`)")


@app.command()
def assignments(name: NAME, json: JSON = False) -> None:
    """The funnels a sequence is assigned to.

    \b
    Examples:
      nurture sequences assignments warm-lead-welcome
    """
    from nurture.project import sequences as catalog

    with state.session() as session:
        funnels = catalog.funnels_of(session, catalog.find(session, name).id)
    if json:
        print_json(funnels)
    else:
        for funnel in funnels:
            out.print(escape(funnel))


@app.command()
def export(name: NAME, json: CHANGED_JSON = False) -> None:
    """Write the file of a sequence that lives only in the store (created over HTTP).

    \b
    Examples:
      nurture sequences export 'Spring Offer'
    """
    from nurture.project import sequences as catalog
    from nurture.project import stored
    from nurture.project.layout import Project

    with state.session(write=True) as session:
        result = stored.export(
            session, Project.from_settings(state.settings), name, datetime.now(UTC)
        )
        _changed(result.plan, catalog.describe(session, name) if json else None)
    note(f"wrote {result.path}: commit it; the file now owns the sequence")


@app.command()
def templates(json: JSON = False) -> None:
    """The template library: sequences to start from (`sequences new NAME --from TEMPLATE`).

    \b
    Examples:
      nurture sequences templates
      nurture sequences templates --json
    """
    from nurture.project import library

    found = library.templates()
    if json:
        print_json([template.to_dict() for template in found])
        return
    table = Table("template", "category", "steps", "what it does")
    for t in found:
        table.add_row(t.name, t.category, str(len(t.steps)), escape(t.description))
    out.print(table)


@app.command()
def new(
    name: NAME,
    from_: Annotated[
        str | None,
        typer.Option("--from", help="A template of the library (default: a blank sequence)."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the file written as JSON.")] = False,
) -> None:
    """Write a new sequence file, sequences/NAME.yaml, from a template or blank (not applied).

    \b
    Examples:
      nurture sequences new 'Spring Webinar' --from webinar-follow-up
      nurture sequences new 'My Sequence'
    """
    from nurture.project import sequences as catalog
    from nurture.project.layout import Project

    path = catalog.new_sequence(Project.from_settings(state.settings), name, from_)
    if json:
        print_json({"name": name, "path": str(path), "template": from_, "applied": False})
    note(f"wrote {path}: edit it, then `nurture test && nurture plan && nurture apply`")
