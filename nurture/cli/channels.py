"""`nurture channels check [NAME]` and `nurture channels send-test NAME --to ADDRESS`."""

from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from nurture.channels.redact import redact, secrets_of
from nurture.cli.context import state
from nurture.cli.options import JSON
from nurture.cli.output import note, out, print_json, print_result
from nurture.errors import NurtureError

app = typer.Typer(help="Channels: check the providers, send a test message.", no_args_is_help=True)

NAME_HELP = "whatsapp, sms, email or notification."


@app.command()
def check(
    name: Annotated[
        str | None,
        typer.Argument(
            help=NAME_HELP + " Or mailbox: the IMAP mailbox of leads' answers. Default: every one."
        ),
    ] = None,
    json: JSON = False,
) -> None:
    """Connect to each configured channel (SMTP login, Twilio account, webhook) without sending,
    and log in to the mailbox of leads' answers ([inbound_email.imap]) without reading it.

    \b
    Examples:
      nurture channels check
      nurture channels check email --json
      nurture channels check mailbox
    """
    from nurture.engine import providers

    configured = state.settings.providers
    mailbox = state.settings.inbound_email.imap
    secrets = secrets_of(configured)
    secrets += [mailbox.password.get_secret_value()] if mailbox and mailbox.password else []
    asked = name == providers.MAILBOX
    found = [] if asked else providers.check(configured, [name] if name else None)
    if asked or (name is None and mailbox is not None):
        found.append(providers.check_mailbox(mailbox))
    results = [
        replace(result, detail=redact(result.detail, secrets))  # a provider's text may echo one
        for result in found
    ]
    if json:
        print_json([asdict(result) for result in results])
    else:
        table = Table("channel", "status", "detail")
        for result in results:
            status = "ok" if result.ok else "FAILED" if result.configured else "-"
            table.add_row(result.channel, status, escape(result.detail))
        out.print(table)
    if state.settings.channel != "live":
        note(
            f'note: channel = "{state.settings.channel}": `nurture run` uses these providers with '
            '--channel live or channel = "live" in nurture.toml'
        )
    if any(result.configured and not result.ok for result in results):
        raise typer.Exit(1)


@app.command("send-test")
def send_test(
    name: Annotated[str, typer.Argument(help=NAME_HELP)],
    to: Annotated[
        str, typer.Option("--to", help="An email address or phone number (Slack: ignored).")
    ] = "",
    template: Annotated[
        str | None, typer.Option("--template", help="WhatsApp: an approved template's HX... SID.")
    ] = None,
    json: JSON = False,
) -> None:
    """Send one real test message through a channel.

    \b
    Examples:
      nurture channels send-test email --to you@example.com
      nurture channels send-test sms --to +14155550123
    """
    from nurture.engine import providers

    settings = state.settings
    try:
        result = providers.send_test(
            settings.providers, name, to, datetime.now(UTC), settings.phone_region, template
        )
    except NurtureError as error:
        raise NurtureError(redact(str(error), secrets_of(settings.providers))) from None
    sent = {"channel": name, "to": to or None, "provider_id": result.provider_id}
    message = (
        f"Sent a test {name} message{f' to {to}' if to else ''}: provider id {result.provider_id}"
    )
    print_result(sent, json=json, message=message)
