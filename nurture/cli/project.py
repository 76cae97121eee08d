"""`nurture init`: a new project with settings and two example sequences."""

from pathlib import Path
from typing import Annotated

import typer

from nurture.cli.output import note, out
from nurture.project.layout import init_project


def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the project.")] = Path("."),
) -> None:
    """Create a nurture project: nurture.toml, .gitignore, two example sequences, their schema."""
    for path in init_project(directory):
        out.print(f"created {directory / path}", markup=False)
    enter = "" if directory == Path(".") else f"cd {directory} && "
    note(f"next: {enter}nurture validate && nurture plan && nurture apply")
