"""`nurture serve`: the HTTP API on uvicorn, beside `nurture run` (they share only the store)."""

import os
from typing import Annotated

import typer

from nurture.cli.context import state
from nurture.cli.output import note


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request.")
    ] = True,
) -> None:
    """Serve the HTTP API: sequences, lead ingestion, /healthz, /metrics, docs at /docs.

    \b
    Examples:
      nurture serve
      nurture serve --host 0.0.0.0 --port 8080 --workers 2
    """
    import uvicorn  # the server's imports cost every other command time: only here

    from nurture.api.app import PROJECT_ENV

    settings = state.settings
    with state.store(write=True):
        pass  # migrate once here (auto_migrate), not in every worker at the same moment
    os.environ[PROJECT_ENV] = str(settings.project_dir)
    if state.options.database_url:
        os.environ["NURTURE_DATABASE_URL"] = state.options.database_url  # the flag, for workers
    note(f"serving on http://{host}:{port} (docs at /docs, sequences {settings.api.sequences})")
    _dashboard_note(host, port)
    uvicorn.run(
        "nurture.api.app:from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
    )


def _dashboard_note(host: str, port: int) -> None:
    """Where the dashboard is, and a sign-in link where a dashboard token exists."""
    from nurture.cli.dashboard import signin_link
    from nurture.errors import NotFound

    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = state.settings.api.public_url or f"http://{shown}:{port}"
    try:
        link, name, role = signin_link(base)
    except NotFound:
        note(
            f"dashboard at {base}/: create a token (`nurture tokens create coach --scope "
            "dashboard:edit`), then open the link `nurture dashboard link` prints"
        )
        return
    note(f"dashboard at {base}/: sign in as {name!r} ({role}) with {link} (valid 15 minutes)")
