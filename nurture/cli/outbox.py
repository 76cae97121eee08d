"""`nurture outbox list`: what the outbox channel kept instead of sending, with the text."""

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from nurture.cli.context import state
from nurture.cli.output import note, out, print_json

app = typer.Typer(
    help="Messages the outbox channel kept (the default of `nurture run`): what would have gone.",
    no_args_is_help=True,
)


@app.command("list")
def list_messages(
    lead: Annotated[str | None, typer.Option("--lead", help="Id, external id or email.")] = None,
    channel: Annotated[
        str | None, typer.Option("--channel", help="whatsapp, sms, email or notification.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="A duration back from now (7d, 12h) or a date.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many messages.")] = 50,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The kept messages, newest first: when, to whom, from which step, and the text.

    \b
    Examples:
      nurture outbox list
      nurture outbox list --lead ana@example.com --channel whatsapp
      nurture outbox list --since 7d --limit 10 --json
    """
    from nurture.insights import outbox as service  # SQLAlchemy: not for `outbox --help`
    from nurture.leads.records import find_lead
    from nurture.rules.periods import parse_when

    with state.session() as session:
        filters = service.OutboxFilter(
            lead_id=find_lead(session, lead).id if lead else None,
            channel=service.check_channel(channel),
            since=parse_when(since, datetime.now(UTC)),
        )
        messages = service.recent(session, filters, limit)
    if json:
        print_json(messages)
    elif not messages:
        note("no messages in the outbox match")
    else:
        out.print("\n\n".join(_shown(message) for message in messages), highlight=False)


def _shown(message: dict[str, Any]) -> str:
    """`3  2026-12-02 09:00  whatsapp to +15555550100  Ana Ruiz › Warm Lead Welcome › welcome`,
    then the subject and the text, indented."""
    origin = " › ".join(
        str(part) for part in (message["lead"], message["sequence"], message["step_id"]) if part
    )
    head = (
        f"{message['id']}  {message['created_at']:%Y-%m-%d %H:%M}  {message['channel']} "
        f"to {message['recipient']}  {origin}"
    )
    text = ([f"Subject: {message['subject']}"] if message["subject"] else []) + [message["body"]]
    lines = "\n".join("    " + line for part in text for line in part.splitlines())
    return escape(f"{head.rstrip()}\n{lines}")
