"""`nurture db ...`: the store's schema migrations."""

from typing import Annotated

import typer

from nurture.cli.context import state
from nurture.cli.output import note, out, print_json

app = typer.Typer(help="The store: schema migrations.", no_args_is_help=True)


@app.command()
def upgrade(
    sql: Annotated[
        bool,
        typer.Option(
            "--sql", help="Print the SQL for a DBA to run instead; the store is unchanged."
        ),
    ] = False,
) -> None:
    """Bring the store's schema up to date (commands that write do it on their own where
    auto_migrate is on: SQLite by default)."""
    from nurture.store import migrate  # SQLAlchemy: not for `db --help`

    if sql:
        typer.echo(migrate.upgrade_sql(state.settings.database), nl=False)
        return
    before, after = migrate.upgrade(state.settings.database)
    if before == after:
        note(f"the store is already at revision {after}")
    else:
        note(f"upgraded the store from revision {before or '(empty)'} to {after}")


@app.command()
def current(json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The store's schema revision, the newest one, and whether the store is up to date."""
    from nurture.store import migrate
    from nurture.store.connect import masked

    url = state.settings.database
    revision, head = migrate.current(url), migrate.head()
    status = {"store": masked(url), "current": revision, "head": head}
    if json:
        print_json({**status, "up_to_date": revision == head})
        return
    out.print(f"store:   {status['store']}", markup=False)
    out.print(f"current: {revision or '(empty)'}", markup=False)
    out.print(f"head:    {head} ({_verdict(revision, head)})", markup=False)


def _verdict(revision: str | None, head: str) -> str:
    from nurture.store import migrate

    if revision == head:
        return "up to date"
    if revision is None or migrate.known(revision):
        return "behind: run `nurture db upgrade`"
    return "the store is newer than this nurture: upgrade nurture"
