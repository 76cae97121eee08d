"""`nurture tasks`, `nurture appointments`, `nurture notifications` (being written)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the command groups (being written)."""
