"""The `nurture` command: global options, the error boundary, the command groups."""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from nurture.cli import (
    db,
    enrollments,
    funnels,
    leads,
    plan,
    project,
    schema,
    sequences,
    tasks,
    validate,
)
from nurture.cli.context import Options, state
from nurture.cli.output import error
from nurture.errors import NurtureError


class Boundary(TyperGroup):
    """Known errors print `error: ...` and exit 1; a traceback only with --debug."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NurtureError as problem:
            if state.options.debug:
                raise
            error(str(problem))
            raise typer.Exit(1) from None
        except Exception as problem:  # the boundary: nothing else reaches the user as a traceback
            if state.options.debug or _is_control_flow(problem):
                raise
            error(
                f"unexpected {type(problem).__name__}: {problem} (run with --debug for the traceback)"
            )
            raise typer.Exit(1) from None


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
) -> None:
    state.configure(Options(project=project_dir, database_url=database_url, debug=debug))


app.command("init")(project.init)
app.command("validate")(validate.validate)
app.command("schema")(schema.schema)
app.command("plan")(plan.plan)
app.command("apply")(plan.apply)
app.add_typer(db.app, name="db")
app.add_typer(sequences.app, name="sequences")
app.add_typer(funnels.app, name="funnels")
app.add_typer(leads.app, name="leads")
app.add_typer(enrollments.app, name="enrollments")
tasks.register(app)  # tasks, appointments, notifications


def main() -> None:
    app(prog_name="nurture")


if __name__ == "__main__":
    sys.exit(main())
