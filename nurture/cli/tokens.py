"""`nurture tokens ...`: bearer tokens of the HTTP API (create shows the token once)."""

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from nurture.cli.context import state
from nurture.cli.options import JSON
from nurture.cli.output import note, out, print_json, print_result

app = typer.Typer(help="Bearer tokens of `nurture serve`.", no_args_is_help=True)
SCOPE_HELP = (
    "read, write (includes read), ingest (POST /api/leads, lead events), dashboard (view the "
    "coach dashboard) or dashboard:edit (change sequences, enrollments, tasks there); repeat."
)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="Who or what uses the token, e.g. landing-page.")],
    scope: Annotated[list[str], typer.Option("--scope", help=SCOPE_HELP)],
    json: JSON = False,
) -> None:
    """Create a token; it is printed once and only its hash is stored.

    \b
    Examples:
      nurture tokens create landing-page --scope ingest
      nurture tokens create reports --scope read --json
      nurture tokens create coach --scope dashboard:edit
    """
    from nurture.store import tokens as service

    with state.session(write=True) as session:
        token = service.create_token(session, name, scope, datetime.now(UTC))
    if json:
        print_json({"name": name, "scopes": sorted(set(scope)), "token": token})
        return
    out.print(token, markup=False)
    note(f"token {name!r} ({', '.join(sorted(set(scope)))}): copy it now, it is not shown again")


@app.command("list")
def list_(json: JSON = False) -> None:
    """Every token: name, scopes, created, revoked (never the token).

    \b
    Examples:
      nurture tokens list
    """
    from nurture.store import tokens as service

    with state.session() as session:
        rows = service.list_tokens(session)
    if json:
        print_json(rows)
        return
    table = Table("name", "scopes", "created (UTC)", "revoked (UTC)")
    for row in rows:
        revoked = f"{row['revoked_at']:%Y-%m-%d %H:%M}" if row["revoked_at"] else ""
        table.add_row(
            escape(row["name"]),
            ", ".join(row["scopes"]),
            f"{row['created_at']:%Y-%m-%d %H:%M}",
            revoked,
        )
    out.print(table)


@app.command()
def revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    json: Annotated[
        bool, typer.Option("--json", help="Print the token as `tokens list --json` does.")
    ] = False,
) -> None:
    """Revoke a token: requests with it get 401 from then on.

    \b
    Examples:
      nurture tokens revoke landing-page
    """
    from nurture.store import tokens as service

    with state.session(write=True) as session:
        row = service.revoke_token(session, name, datetime.now(UTC))
        print_result(service.token_row(row), json=json, message=f"revoked token {name!r}")
