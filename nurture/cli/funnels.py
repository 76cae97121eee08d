"""`nurture funnels` (being written)."""

import typer

app = typer.Typer(help="Funnels and their sequences.", no_args_is_help=True)
