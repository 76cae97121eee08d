"""`nurture leads opt-out|opt-in|inbound` and `nurture unsubscribe TOKEN`."""

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nurture.cli.context import state
from nurture.cli.options import LEAD, LEAD_JSON
from nurture.cli.output import note, print_json, print_result, warning
from nurture.errors import NurtureError

if TYPE_CHECKING:  # the consent service loads SQLAlchemy: imported where a command runs
    from nurture.store.tables import Lead

CHANNELS = Annotated[
    list[str],
    typer.Option("--channel", "-c", help="sms, whatsapp, email or all (repeat for more)."),
]


def opt_out(lead: LEAD, channel: CHANNELS, json: LEAD_JSON = False) -> None:
    """Stop messages to a lead on these channels: their steps are skipped and logged.

    \b
    Examples:
      nurture leads opt-out ana@example.com -c sms -c whatsapp
      nurture leads opt-out 3 -c all --json
    """
    from nurture.leads import consent
    from nurture.leads.records import find_lead, lead_details

    with state.session(write=True) as session:
        row = find_lead(session, lead)
        changed = consent.opt_out(session, row, channel, datetime.now(UTC))
        message = _said(row, "opted out of", changed, consent.opted_out_of(row))
        print_result(lead_details(session, row), json=json, message=message)


def opt_in(lead: LEAD, channel: CHANNELS, json: LEAD_JSON = False) -> None:
    """Let a lead hear from us again on these channels.

    \b
    Examples:
      nurture leads opt-in ana@example.com -c sms
    """
    from nurture.leads import consent
    from nurture.leads.records import find_lead, lead_details

    with state.session(write=True) as session:
        row = find_lead(session, lead)
        changed = consent.opt_in(session, row, channel, datetime.now(UTC))
        message = _said(row, "opted back into", changed, consent.opted_out_of(row))
        print_result(lead_details(session, row), json=json, message=message)


def inbound(
    lead: Annotated[
        str | None,
        typer.Argument(help="The lead's id, external id or email (not with --email-file)."),
    ] = None,
    email_file: Annotated[
        str | None,
        typer.Option(
            "--email-file",
            metavar="FILE|-",
            help="A lead's answer by email: the raw message (RFC 822) in FILE or on stdin (-), "
            "as an MTA pipe gives it; the lead is found from the message.",
        ),
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", help="What they wrote (STOP opts out).")
    ] = None,
    channel: Annotated[str, typer.Option("--channel", "-c", help="whatsapp or sms.")] = "whatsapp",
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="WHEN",
            help="When they wrote: ISO 8601, without an offset in the lead's time zone, else "
            "the project's. Default: now.",
        ),
    ] = None,
    json: LEAD_JSON = False,
) -> None:
    """Record a message from the lead: WhatsApp free text is allowed for 24 hours after it.

    With --email-file, an email as received: matched to the email it answers (In-Reply-To,
    References), else to the lead by its address. An automatic answer (out of office) is
    ignored and a bounce recorded as one; neither is an error (exit 0), so a mail server's
    pipe never bounces them back.

    \b
    Examples:
      nurture leads inbound ana@example.com --text 'Hi! Saw the webinar'
      nurture leads inbound 3 --channel sms --text STOP
      nurture leads inbound --email-file reply.eml
      nurture leads inbound --email-file - < reply.eml
    """
    if email_file is not None:
        if lead is not None or text is not None or at is not None:
            raise NurtureError("--email-file finds the lead and its text in the email: give no "
                               "LEAD, --text or --at with it")  # fmt: skip
        _inbound_email(email_file, json)
        return
    if lead is None:
        raise NurtureError("give the LEAD who wrote (or --email-file with their email)")
    from nurture.leads import consent
    from nurture.leads.enrollment import stopped_text
    from nurture.leads.records import find_lead, lead_details
    from nurture.leads.when import happened_at

    with state.session(write=True) as session:
        row = find_lead(session, lead)
        zone = row.timezone or state.settings.timezone
        when = happened_at(at, zone, datetime.now(UTC))
        result = consent.inbound(session, row, when, text, channel)
        row = result.lead
        message = f"Lead {row.id} {row.name} last wrote {row.last_inbound_at:%Y-%m-%d %H:%M} UTC"
        message += f"; opted out of {', '.join(result.opted_out)}" if result.opted_out else ""
        message += f"; opted back into {', '.join(result.opted_in)}" if result.opted_in else ""
        message += f"; {stopped_text(result.stopped, 'stop_on_reply')}" if result.stopped else ""
        print_result(lead_details(session, row), json=json, message=message + ".")


def _inbound_email(source: str, json: bool) -> None:
    from nurture.engine import inbound
    from nurture.leads.enrollment import stopped_text

    data = _read_bytes(source)
    with state.session(write=True) as session:
        received = inbound.email(session, data, datetime.now(UTC))
    if json:
        print_json(received.to_dict())
    if received.outcome == "reply":
        ended = list(received.stopped)
        stopped = f"; {stopped_text(ended, 'stop_on_reply')}" if ended else ""
        by = "the email it answers" if received.matched_by == "in-reply-to" else "its address"
        note(f"{received.detail} (found by {by}){stopped}.")
    elif received.outcome in ("auto", "bounce", "repeat"):
        note(f"{received.detail}.")
    else:
        warning(f"{received.detail}: nothing recorded.")


def _read_bytes(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    path = Path(source).expanduser()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NurtureError(f"{source}: no such file") from None
    except OSError as error:
        raise NurtureError(f"{source}: {error.strerror or error}") from None


def unsubscribe(
    token: Annotated[str, typer.Argument(help="The token of an unsubscribe link.")],
    json: LEAD_JSON = False,
) -> None:
    """Apply an unsubscribe link's signed token: the lead gets no more email.

    \b
    Examples:
      nurture unsubscribe TOKEN
    """
    from nurture.leads import consent
    from nurture.leads.records import lead_details

    secret = state.settings.unsubscribe.secret
    with state.session(write=True) as session:
        done = consent.unsubscribe(
            session, token, secret.get_secret_value() if secret else None, datetime.now(UTC)
        )
        row = done.lead
        already = "" if done.changed else " (already unsubscribed)"
        message = f"Lead {row.id} {row.name} unsubscribed from {done.channel}{already}."
        print_result(lead_details(session, row), json=json, message=message)


def _said(row: "Lead", verb: str, changed: list[str], now_out: list[str]) -> str:
    did = f"{verb} {', '.join(changed)}" if changed else "no change"
    return f"Lead {row.id} {row.name}: {did}; opted out of: {', '.join(now_out) or 'nothing'}."
