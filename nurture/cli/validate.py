"""`nurture validate`: every problem of every sequence file, as `file:line:column: message`."""

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nurture.cli.context import state
from nurture.cli.output import note, plural, print_json
from nurture.errors import ProjectNotFound

if TYPE_CHECKING:  # YAML and Jinja2: imported when files are checked, not for `validate --help`
    from nurture.spec.appointments import Bookable
    from nurture.spec.diagnostics import Diagnostic
    from nurture.spec.files import CheckResult


def validate(
    paths: list[Path] | None = typer.Argument(
        None,
        help="Sequence files or folders, - for stdin (default: the project's sequences folder).",
    ),
    json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    strict: bool = typer.Option(
        False, "--strict", help="Warnings are errors: reported as such, and they fail (exit 1)."
    ),
) -> None:
    """Check sequence files: YAML, keys and values, templates, unique names; lint warnings.

    Exit 1 on errors (and on warnings with --strict, which makes them errors).

    \b
    Examples:
      nurture validate
      nurture validate sequences/welcome.yaml --strict
      nurture validate --json
    """
    from nurture.spec.files import shown
    from nurture.spec.lint import checked

    coach_keys = _coach_keys(required=not paths)
    targets = paths or [Path(shown(state.settings.sequences_path))]
    ignore, conversion_statuses = _lint_settings()
    result = checked(
        targets,
        coach_keys=coach_keys,
        ignore=ignore,
        conversion_statuses=conversion_statuses,
        bookable=_bookable(),
    )
    if strict:
        result.diagnostics = [replace(d, severity="error") for d in result.diagnostics]
    diagnostics = result.diagnostics  # paths already relative to the working directory
    if json:
        print_json(_as_json(result, diagnostics))
    else:
        for diagnostic in diagnostics:
            typer.echo(str(diagnostic))  # plain echo: no rich markup in users' text
        note(_summary(result, diagnostics))
    if not result.valid:
        raise typer.Exit(1)


def _coach_keys(*, required: bool) -> frozenset[str] | None:
    """The coach keys templates may use; files given outside a project get the defaults."""
    try:
        return frozenset(state.settings.coach.model_dump())
    except ProjectNotFound:
        if required:
            raise
        return None


def _bookable() -> "Bookable | None":
    """What the settings allow of appointments; None outside a project (nothing to check)."""
    from nurture.project.layout import bookable

    try:
        return bookable(state.settings)
    except ProjectNotFound:
        return None


def _lint_settings() -> tuple[list[str], list[str]]:
    """The rules nurture.toml silences and the conversion statuses (defaults outside a project)."""
    try:
        settings = state.settings
    except ProjectNotFound:
        from nurture.leads.records import LeadRules  # SQLAlchemy: only outside a project

        return [], list(LeadRules().conversion_statuses)
    return list(settings.lint_ignore), list(settings.conversion_statuses)


def _as_json(result: "CheckResult", diagnostics: "list[Diagnostic]") -> dict[str, object]:
    return {
        "valid": result.valid,
        "files": result.files,
        "sequences": [file.spec.name for file in result.sequences],
        "diagnostics": [d.as_dict() for d in diagnostics],
    }


def _summary(result: "CheckResult", diagnostics: "list[Diagnostic]") -> str:
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    counts = [plural(result.files, "file")]
    counts += [plural(errors, "error")] if errors else []
    counts += [plural(warnings, "warning")] if warnings else []
    if result.valid:
        valid = f"✓ {plural(len(result.sequences), 'sequence')} valid"
        return valid + (f" ({', '.join(counts[1:])})" if warnings else "")
    return ", ".join(counts)
