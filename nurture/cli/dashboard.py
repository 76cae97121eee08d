"""`nurture dashboard link`: a sign-in link to the coach dashboard `nurture serve` serves."""

from typing import Annotated

import typer

from nurture.cli.context import state
from nurture.cli.output import note, out, print_json

app = typer.Typer(
    help="The coach dashboard of `nurture serve`: sign-in links.", no_args_is_help=True
)


def signin_link(base_url: str, token: str | None = None) -> tuple[str, str, str]:
    """(link, token name, role) of a sign-in link for the dashboard token `token` (or the best)."""
    from nurture.store.tokens import dashboard_token
    from nurture.web.signin import link_code, role_of, token_caller

    with state.session() as session:
        row = dashboard_token(session, token)
        link = f"{base_url.rstrip('/')}/signin#{link_code(row)}"
        return link, row.name, role_of(token_caller(row)) or ""


def default_url() -> str:
    return state.settings.api.public_url or "http://127.0.0.1:8080"


@app.command()
def link(
    token: Annotated[
        str | None,
        typer.Option(help="The token's name (default: the newest that can edit, else view)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="Where the dashboard is reached (default: api.public_url, else "
            "http://127.0.0.1:8080)."
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print a link that signs a browser in to the dashboard (valid 15 minutes).

    The code is after `#`: a browser never sends that part, so no server log holds it. The
    token comes first: `nurture tokens create coach --scope dashboard:edit`.

    \b
    Examples:
      nurture dashboard link
      nurture dashboard link --token assistant --url https://nurture.example.com
    """
    found, name, role = signin_link(url or default_url(), token)
    if json:
        print_json({"link": found, "token": name, "role": role})
        return
    out.print(found, markup=False, soft_wrap=True)
    note(f"signs in as token {name!r} ({role}); valid 15 minutes: open it in a browser")
