"""`nurture db ...`: the store's schema migrations."""

from typing import Annotated

import typer

from nurture.cli.context import state
from nurture.cli.options import JSON
from nurture.cli.output import out, print_json, print_result

app = typer.Typer(help="The store: schema migrations.", no_args_is_help=True)


@app.command()
def upgrade(
    json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the store's revision as `db current --json`, and the one before."
        ),
    ] = False,
    sql: Annotated[
        bool,
        typer.Option(
            "--sql", help="Print the SQL for a DBA to run instead; the store is unchanged."
        ),
    ] = False,
) -> None:
    """Bring the store's schema up to date (commands that write do it on their own where
    auto_migrate is on: SQLite by default).

    \b
    Examples:
      nurture db upgrade
      nurture db upgrade --sql > upgrade.sql   # for a DBA; the store is unchanged
      nurture db upgrade --json
    """
    from nurture.store import migrate  # SQLAlchemy: not for `db --help`

    url = state.settings.database
    if sql:
        typer.echo(migrate.upgrade_sql(url), nl=False)
        return
    before, after = migrate.upgrade(url)
    if before == after:
        message = f"the store is already at revision {after}"
    else:
        message = f"upgraded the store from revision {before or '(empty)'} to {after}"
    print_result(_revisions(url, after) | {"before": before}, json=json, message=message)


@app.command()
def current(json: JSON = False) -> None:
    """The store's schema revision, the newest one, and whether the store is up to date.

    \b
    Examples:
      nurture db current
      nurture db current --json
    """
    from nurture.store import migrate
    from nurture.store.connect import masked

    url = state.settings.database
    revision, head = migrate.current(url), migrate.head()
    if json:
        print_json(_revisions(url, revision))
        return
    out.print(f"store:   {masked(url)}", markup=False)
    out.print(f"current: {revision or '(empty)'}", markup=False)
    out.print(f"head:    {head} ({_verdict(revision, head)})", markup=False)


def _revisions(url: str, revision: str | None) -> dict[str, object]:
    """The store, its revision and the newest one: what `db current --json` prints."""
    from nurture.store import migrate
    from nurture.store.connect import masked

    head = migrate.head()
    return {"store": masked(url), "current": revision, "head": head, "up_to_date": revision == head}


def _verdict(revision: str | None, head: str) -> str:
    from nurture.store import migrate

    if revision == head:
        return "up to date"
    if revision is None or migrate.known(revision):
        return "behind: run `nurture db upgrade`"
    return "the store is newer than this nurture: upgrade nurture"
