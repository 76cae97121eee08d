"""`nurture plan` and `nurture apply`: the store made to match the sequence files, Terraform style."""

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from nurture.cli.context import state
from nurture.cli.output import note, out, print_json
from nurture.errors import Aborted, NurtureError, SpecError

if TYPE_CHECKING:  # planning loads SQLAlchemy: imported where a command runs
    from nurture.project.layout import Project
    from nurture.project.plan import Plan, SequenceChange
    from nurture.spec.files import SequenceFile

JSON = Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")]
PRUNE = Annotated[bool, typer.Option("--prune", help="Delete store sequences that have no file.")]
_MARKS = {
    "create": "[green]+ create[/]",
    "update": "[yellow]~ update[/]",
    "delete": "[red]- delete[/]",
    "drift": "[magenta]! drift [/]",
    "unchanged": "  same  ",
}


def plan(
    json: JSON = False,
    prune: PRUNE = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0: no changes, 1: error, 2: changes.")
    ] = False,
) -> None:
    """Show what `apply` would change in the store.

    \b
    Examples:
      nurture plan
      nurture plan --detailed-exitcode   # in CI: 2 means changes
      nurture plan --json
    """
    from nurture.project.layout import Project
    from nurture.project.sync import plan_project

    project = Project.from_settings(state.settings)
    files = _files(project, json)  # invalid files: every problem reported, the store not opened
    if not state.store_made():  # no nurture.db yet: everything is to create, as terraform says
        result = plan_project(None, project, prune=prune, files=files)
    else:
        with state.store() as store, store.begin() as connection:
            result = plan_project(connection, project, prune=prune, files=files)
    show_plan(result, json=json)
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(2)


def apply(
    json: JSON = False,
    prune: PRUNE = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    canary: Annotated[
        str | None,
        typer.Option(
            "--canary",
            help="A share (10%): new versions get it of new enrollments, the others stay on "
            "the current version; apply without it completes the rollout.",
        ),
    ] = None,
) -> None:
    """Validate every file, then make the store match them in one transaction.

    \b
    Examples:
      nurture apply
      nurture apply --yes --prune
      nurture apply --canary 10%
    """
    from nurture.project.layout import Project
    from nurture.project.sync import apply_changes, plan_to_apply

    share = _share(canary)
    project = Project.from_settings(state.settings)
    files = _files(project, json)  # invalid files: every problem reported, the store not opened
    with state.session(write=True) as session:
        result = plan_to_apply(session, project, prune=prune, files=files)
        if not json:
            show_plan(result, json=False)
        if result.has_changes:
            _confirm(result, yes)
            apply_changes(session, result, datetime.now(UTC), share)
    if json:
        print_json(result.to_dict() | {"applied": result.has_changes})
    elif result.has_changes:
        note("Applied.")
    if share is not None and result.by_action("create") and not json:
        note("a new sequence has no current version to keep: each was applied whole, no canary")


def _share(text: str | None) -> float | None:
    from nurture.project.experiments import parse_share

    if text is None:
        return None
    try:
        return parse_share(text)
    except ValueError:
        raise NurtureError(
            f"--canary {text!r}: give a share between 0% and 100%, e.g. 10%"
        ) from None


def _files(project: "Project", json: bool) -> "list[SequenceFile]":
    """The valid files; with --json, invalid ones print diagnostics as `validate --json` does."""
    try:
        return project.files()
    except SpecError as problem:
        if not json:
            raise
        print_json({"valid": False, "diagnostics": [d.as_dict() for d in problem.diagnostics]})
        raise typer.Exit(1) from None


def _confirm(result: "Plan", yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        if result.by_action("delete"):
            raise Aborted(
                "refusing to delete sequences without a terminal to confirm on; pass --yes"
            )
        return
    if not typer.confirm("Apply these changes?", err=True):
        raise Aborted("nothing applied")


def show_plan(result: "Plan", *, json: bool) -> None:
    """The plan as Terraform shows one: a line per sequence, the details of each update."""
    if json:
        print_json(result.to_dict())
        return
    for change in result.changes:
        if change.action != "unchanged":
            _show_change(change)
    counts = result.counts()
    summary = (
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['unchanged']} unchanged"
    )
    if counts["drift"]:
        summary += f", {counts['drift']} only in the store (apply --prune deletes them)"
    headline = (
        "" if result.has_changes else "No changes to apply. " if counts["drift"] else "No changes. "
    )
    out.print(f"{headline}{summary}.")


def _show_change(change: "SequenceChange") -> None:
    where = f" ({escape(change.path)})" if change.path else ""
    version = " [dim](new version)[/]" if change.action == "update" and change.new_version else ""
    out.print(f"{_MARKS[change.action]} [bold]{escape(change.name)}[/]{where}{version}")
    if change.in_flight and change.action in ("update", "delete"):
        plural = "enrollment" if change.in_flight == 1 else "enrollments"
        verb = "stops" if change.action == "delete" else "affects"
        out.print(f"      {verb} {change.in_flight} in-flight {plural}")
    if change.action == "drift":
        out.print("      in the store but no sequence file has this name")
    for field in change.fields:
        out.print(escape(f"      {field.field}: {_changed(field.old, field.new)}"))
    for step in change.steps:
        detail = f" ({', '.join(step.fields)})" if step.fields else ""
        out.print(f"      step {step.step_id}: {step.kind}{detail}")
    for experiment in change.experiments:
        out.print(escape(f"      {experiment.text()}"))
    if change.canary is not None:
        out.print(escape(f"      {change.canary.text(change.rollout)}"))


def _changed(old: object, new: object) -> str:
    """`old → new`; for two lists, what was added and removed (a long list cut short could
    hide the very item that changed)."""
    if isinstance(old, list) and isinstance(new, list):
        added = [item for item in new if item not in old]
        removed = [item for item in old if item not in new]
        said = [f"+ {_short(item)}" for item in added] + [f"- {_short(item)}" for item in removed]
        if said and len(added) + len(removed) <= 10:
            return ", ".join(said)
    return f"{_short(old)} → {_short(new)}"


def _short(value: object, limit: int = 60) -> str:
    """A value as it reads in YAML/JSON (true, null, ["a"]), cut to `limit`."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
