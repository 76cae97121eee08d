"""`nurture init`: a new project with settings and two example sequences."""

from pathlib import Path
from typing import Annotated

import typer

from nurture.cli.output import note, print_json


def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the project.")] = Path("."),
    template: Annotated[
        list[str] | None,
        typer.Option(
            "--template",
            "-t",
            help="Start from this template of the library instead of the examples (repeatable; "
            "`nurture sequences templates` lists them).",
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the files created as JSON.")] = False,
) -> None:
    """Create a nurture project: nurture.toml, .gitignore, two example sequences, their schema.

    \b
    Examples:
      nurture init ../my-nurture
      nurture init ../webinars --template webinar-follow-up
      nurture init . --json
    """
    from nurture.project.layout import init_project

    created = [str(directory / path) for path in init_project(directory, template or ())]
    if json:
        print_json({"project": str(directory), "created": created})
        return
    for path in created:
        note(f"created {path}")
    enter = "" if directory == Path(".") else f"cd {directory} && "
    note(f"next: {enter}nurture validate && nurture plan && nurture apply")
