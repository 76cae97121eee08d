"""The `nurture` command: global options, the error boundary, the command groups."""

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from nurture import __version__
from nurture.cli import (
    channels,
    config,
    consent,
    db,
    enrollments,
    explain,
    funnels,
    leads,
    outbox,
    plan,
    project,
    schema,
    sequences,
    serve,
    stats,
    status,
    tasks,
    tokens,
    validate,
)
from nurture.cli import run as run_command
from nurture.cli import test as test_command
from nurture.cli.context import Options, state
from nurture.cli.output import error
from nurture.errors import NurtureError, SpecError


class Boundary(TyperGroup):
    """Known errors print `error: ...` and exit 1; a traceback only with --debug."""

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
                error(line)
            raise typer.Exit(1) from None
        except SQLAlchemyError as problem:  # unplanned: its statement and the URL stay hidden
            if state.options.debug:
                raise
            error(f"the store failed: {_store_reason(problem)} (run with --debug for the detail)")
            raise typer.Exit(1) from None
        except Exception as problem:  # the boundary: nothing else reaches the user as a traceback
            if state.options.debug or _is_control_flow(problem):
                raise
            error(
                f"unexpected {type(problem).__name__}: {problem} (run with --debug for the traceback)"
            )
            raise typer.Exit(1) from None


def _messages(problem: Exception) -> list[str]:
    """Every diagnostic of invalid files; the file and reason of an OS error; else the message."""
    if isinstance(problem, SpecError):
        return [str(diagnostic) for diagnostic in problem.diagnostics]
    if isinstance(problem, OSError) and not isinstance(problem, NurtureError):
        where = f"{problem.filename}: " if problem.filename else ""
        return [f"{where}{problem.strerror or problem}"]
    return [str(problem)]


def _store_reason(problem: SQLAlchemyError) -> str:
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
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Lead-nurturing sequences as code: validate, plan, apply, test and run drip campaigns.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"nurture {__version__}")
        raise typer.Exit(0)


@app.callback()
def options(
    project_dir: Annotated[
        Path | None,
        typer.Option("--project", "-C", help="Project directory (default: search upward)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Store URL (overrides NURTURE_DATABASE_URL)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    state.configure(Options(project=project_dir, database_url=database_url, debug=debug))


app.command("init")(project.init)
app.command("validate")(validate.validate)
app.command("schema")(schema.schema)
app.command("plan")(plan.plan)
app.command("apply")(plan.apply)
app.command("explain")(explain.explain)
app.command("run")(run_command.run)
app.command("status")(status.status)
app.command("test")(test_command.test)
app.command("serve")(serve.serve)
app.command("stats")(stats.stats)
app.command("logs")(stats.logs)
app.command("report")(stats.report)
app.add_typer(db.app, name="db")
app.add_typer(sequences.app, name="sequences")
app.add_typer(funnels.app, name="funnels")
app.add_typer(leads.app, name="leads")
app.add_typer(enrollments.app, name="enrollments")
app.add_typer(tokens.app, name="tokens")
tasks.register(app)  # tasks, appointments, notifications
app.add_typer(channels.app, name="channels")
app.add_typer(outbox.app, name="outbox")
app.add_typer(config.app, name="config")
app.command("unsubscribe")(consent.unsubscribe)
leads.app.command("opt-out")(consent.opt_out)
leads.app.command("opt-in")(consent.opt_in)
leads.app.command("inbound")(consent.inbound)


def main() -> None:
    app(prog_name="nurture")


if __name__ == "__main__":
    main()  # typer exits with the command's code
