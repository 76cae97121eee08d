"""`nurture db` (being written)."""

import typer

app = typer.Typer(help="The store: migrations.", no_args_is_help=True)
