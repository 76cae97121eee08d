"""`nurture sequences` (being written)."""

import typer

app = typer.Typer(help="List, show and change sequences.", no_args_is_help=True)
