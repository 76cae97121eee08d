"""The `nurture` command: global options, the error boundary, the command groups."""

import gc
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from nurture.cli.context import Options, state
from nurture.cli.lazy import Lazy, LazyGroup
from nurture.errors import NurtureError, SpecError


def _leads() -> typer.Typer:
    """`leads`, with the consent and the merge commands among its own."""
    from nurture.cli import consent, lead_merge, leads

    if not any(command.name == "inbound" for command in leads.app.registered_commands):
        leads.app.command("opt-out")(consent.opt_out)
        leads.app.command("opt-in")(consent.opt_in)
        leads.app.command("inbound")(consent.inbound)
        leads.app.command()(lead_merge.duplicates)
        leads.app.command()(lead_merge.merge)
    return leads.app


PROJECT, PEOPLE, RUNNING, SETUP = "Sequences", "Leads", "Running", "Setup"  # the help panels

# Each command's module is imported when it runs (nurture.cli.lazy); `help` is its line in
# `nurture --help`, the first line of its docstring (or its group's help).
COMMANDS = {
    "init": Lazy(
        "nurture.cli.project:init",
        "Create a nurture project: nurture.toml, .gitignore, two example sequences, their schema.",
        PROJECT,
    ),
    "validate": Lazy(
        "nurture.cli.validate:validate",
        "Check sequence files: YAML, keys and values, templates, unique names; lint warnings.",
        PROJECT,
    ),
    "schema": Lazy(
        "nurture.cli.schema:schema",
        "Print the JSON Schema of a sequence file (point yaml-language-server at it).",
        PROJECT,
    ),
    "plan": Lazy("nurture.cli.plan:plan", "Show what `apply` would change in the store.", PROJECT),
    "apply": Lazy(
        "nurture.cli.plan:apply",
        "Validate every file, then make the store match them in one transaction.",
        PROJECT,
    ),
    "explain": Lazy(
        "nurture.cli.explain:explain",
        "Why a lead got its sequence (or none), each step's state, when and why the next runs.",
        PEOPLE,
    ),
    "run": Lazy(
        "nurture.cli.run:run",
        "Execute due steps: the daemon (until SIGTERM/SIGINT), or with --once what is due now.",
        RUNNING,
    ),
    "status": Lazy(
        "nurture.cli.status:status",
        "Show the daemons (heartbeats), the due backlog, the lag and the sends to settle.",
        RUNNING,
    ),
    "test": Lazy(
        "nurture.cli.test:test",
        "Dry-run a sequence for a lead, or run the `tests:` cases (all of them without arguments).",
        PROJECT,
    ),
    "serve": Lazy(
        "nurture.cli.serve:serve",
        "Serve the HTTP API: sequences, lead ingestion, /healthz, /metrics, docs at /docs.",
        RUNNING,
    ),
    "stats": Lazy(
        "nurture.cli.stats:stats",
        "How sequences perform: outcomes, conversion, completion time; per step with SEQUENCE.",
        RUNNING,
    ),
    "logs": Lazy(
        "nurture.cli.stats:logs",
        "The execution log, newest first: status, attempt, lag and error of every step run.",
        RUNNING,
    ),
    "report": Lazy(
        "nurture.cli.stats:report",
        "Write one self-contained HTML file with the figures as charts (opens offline).",
        RUNNING,
    ),
    "unsubscribe": Lazy(
        "nurture.cli.consent:unsubscribe",
        "Apply an unsubscribe link's signed token: the lead gets no more email.",
        PEOPLE,
    ),
    "db": Lazy("nurture.cli.db:app", "The store: schema migrations.", SETUP),
    "sequences": Lazy(
        "nurture.cli.sequences:app",
        "List, show and change sequences (the file and the store together).",
        PROJECT,
    ),
    "funnels": Lazy(
        "nurture.cli.funnels:app", "Funnels (lead sources) and the sequences they offer.", PROJECT
    ),
    "leads": Lazy(_leads, "Leads: add, import, update, convert, list, show.", PEOPLE),
    "enrollments": Lazy(
        "nurture.cli.enrollments:app",
        "Leads in sequences: list, advance, pause, resume, stop, settle.",
        PEOPLE,
    ),
    "tokens": Lazy("nurture.cli.tokens:app", "Bearer tokens of `nurture serve`.", SETUP),
    "dashboard": Lazy(
        "nurture.cli.dashboard:app", "The coach dashboard of `nurture serve`: sign-in links.", SETUP
    ),
    "tasks": Lazy("nurture.cli.tasks:tasks", "Follow-up tasks create_task steps left.", PEOPLE),
    "appointments": Lazy(
        "nurture.cli.appointments:app",
        "Appointments: list, done, no-show, cancel, reschedule; the coach's calendar feed.",
        PEOPLE,
    ),
    "notifications": Lazy(
        "nurture.cli.tasks:notifications",
        "Notes send_notification steps left for the coach.",
        PEOPLE,
    ),
    "channels": Lazy(
        "nurture.cli.channels:app", "Channels: check the providers, send a test message.", SETUP
    ),
    "config": Lazy("nurture.cli.config:app", "Settings: show the effective configuration.", SETUP),
    "events": Lazy(
        "nurture.cli.events:app",
        "Engagement events: record bounce reports (DSN messages, an mbox or a maildir).",
        RUNNING,
    ),
    "outbox": Lazy(
        "nurture.cli.outbox:app",
        "Messages the outbox channel kept (the default of `nurture run`): what would have gone.",
        RUNNING,
    ),
}


class Boundary(LazyGroup):
    """Known errors print `error: ...` and exit 1; a traceback only with --debug."""

    lazy = COMMANDS

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `nurture ... | head`: the reader left, nothing is wrong
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit flush quiet
            raise typer.Exit(0) from None
        except (NurtureError, OSError) as problem:
            if state.options.debug:
                raise
            for line in _messages(problem):
                _error(line)
            raise typer.Exit(1) from None
        except Exception as problem:  # the boundary: nothing else reaches the user as a traceback
            if state.options.debug or _is_control_flow(problem):
                raise
            if _is_store_failure(problem):  # unplanned: its statement and the URL stay hidden
                reason = _store_reason(problem)
                _error(f"the store failed: {reason} (run with --debug for the detail)")
                raise typer.Exit(1) from None
            _error(
                f"unexpected {type(problem).__name__}: {problem} (run with --debug for the traceback)"
            )
            raise typer.Exit(1) from None


def _error(message: str) -> None:
    """`error: ...` on stderr (rich's console is imported when there is an error to print)."""
    from nurture.cli.output import error

    error(message)


def _messages(problem: Exception) -> list[str]:
    """Every diagnostic of invalid files; the file and reason of an OS error; else the message."""
    if isinstance(problem, SpecError):
        return [str(diagnostic) for diagnostic in problem.diagnostics]
    if isinstance(problem, OSError) and not isinstance(problem, NurtureError):
        where = f"{problem.filename}: " if problem.filename else ""
        return [f"{where}{problem.strerror or problem}"]
    return [str(problem)]


def _is_store_failure(problem: Exception) -> bool:
    """An SQLAlchemy error (without importing SQLAlchemy for a command that never used it)."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(problem, errors.SQLAlchemyError)


def _store_reason(problem: Exception) -> str:
    """The first line of the driver's message: later lines quote the statement or its values."""
    cause = getattr(problem, "orig", None) or problem
    text = str(cause.args[0]) if cause.args else ""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first or type(cause).__name__


def _is_control_flow(problem: Exception) -> bool:
    """typer's own exits, aborts and usage errors, which it reports itself."""
    return type(problem).__module__.startswith("typer")


app = typer.Typer(
    cls=Boundary,
    rich_markup_mode=None,  # the listing in click's plain help (LazyGroup.format_commands)
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Lead-nurturing sequences as code: validate, plan, apply, test and run drip campaigns.",
    epilog="Every option of a command is in `nurture COMMAND -h`; `--json` prints its result "
    "as JSON.",
)


def _print_version(value: bool) -> None:
    if value:
        from nurture import __version__

        typer.echo(f"nurture {__version__}")
        raise typer.Exit(0)


@app.callback()
def options(
    project_dir: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-C",
            envvar="NURTURE_PROJECT",
            help="Project directory (default: search upward from the working directory).",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="NURTURE_DATABASE_URL",
            help="Store URL (default: database_url in nurture.toml, else SQLite in the project).",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", envvar="NURTURE_DEBUG", help="Show tracebacks.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    state.configure(Options(project=project_dir, database_url=database_url, debug=debug))


def main() -> None:
    # pydantic looks for plugins in every installed package's metadata (25 ms at each start);
    # nurture uses none. PYDANTIC_DISABLE_PLUGINS="" in the environment turns them back on.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    # Start-up makes ~100k objects that live as long as the process (modules, pydantic's
    # schemas); collecting every 700 allocations walks them again and again, 8% of `validate`.
    # The daemon then freezes what start-up made, and the import sets its own thresholds.
    gc.set_threshold(50_000, *gc.get_threshold()[1:])
    app(prog_name="nurture")


if __name__ == "__main__":
    main()  # typer exits with the command's code
