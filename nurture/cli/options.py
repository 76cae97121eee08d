"""Options and arguments several command groups share (typer annotations)."""

from typing import Annotated

import typer

JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LEAD = Annotated[str, typer.Argument(help="The lead's id, external id or email.")]
LEAD_JSON = Annotated[
    bool, typer.Option("--json", help="Print the lead as `leads show --json` does.")
]
"""--json of a command that changes a lead: the lead, as `leads show --json` prints it."""
