"""`nurture tasks`, `nurture notifications`: what steps left for people (appointments:
nurture.cli.appointments)."""

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from nurture.cli.context import state
from nurture.cli.options import JSON
from nurture.cli.output import out, print_json, print_result

tasks = typer.Typer(help="Follow-up tasks create_task steps left.", no_args_is_help=True)
notifications = typer.Typer(
    help="Notes send_notification steps left for the coach.", no_args_is_help=True
)


def _time(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else ""


@tasks.command("list")
def list_tasks(
    all_: Annotated[bool, typer.Option("--all", help="Done tasks too.")] = False, json: JSON = False
) -> None:
    """Open tasks, soonest due first.

    \b
    Examples:
      nurture tasks list
      nurture tasks list --all --json
    """
    from nurture.leads import tasks as service

    with state.session() as session:
        rows = service.list_tasks(session, done=all_)
    if json:
        print_json(rows)
        return
    table = Table("id", "lead", "task", "due (UTC)", "priority", "assignee", "done")
    for r in rows:
        table.add_row(
            str(r["id"]),
            escape(r["lead"]),
            escape(r["title"]),
            _time(r["due_at"]),
            r["priority"],
            escape(r["assignee"] or ""),
            _time(r["done_at"]),
        )
    out.print(table)


@tasks.command("done")
def done(
    task_id: Annotated[int, typer.Argument(help="The task id.")],
    json: Annotated[
        bool, typer.Option("--json", help="Print the task as `tasks list --json` does.")
    ] = False,
) -> None:
    """Mark a task done (a task already done stays as it was).

    \b
    Examples:
      nurture tasks done 4
    """
    from nurture.leads import tasks as service

    with state.session(write=True) as session:
        task, was_open = service.finish_task(session, task_id, datetime.now(UTC))
        said = "done" if was_open else f"was already done on {_time(task.done_at)} UTC"
        message = f"task {task_id} {said}: {task.title}"
        print_result(service.task_row(session, task), json=json, message=message)


@notifications.command("list")
def list_notifications(json: JSON = False) -> None:
    """Every notification for the coach, newest first.

    \b
    Examples:
      nurture notifications list
    """
    from nurture.leads import tasks as service

    with state.session() as session:
        rows = service.list_notifications(session)
    if json:
        print_json(rows)
        return
    table = Table("id", "lead", "message", "urgent", "created (UTC)")
    for r in rows:
        urgent = "yes" if r["urgent"] else ""
        table.add_row(
            str(r["id"]),
            escape(r["lead"] or ""),
            escape(r["message"]),
            urgent,
            _time(r["created_at"]),
        )
    out.print(table)
