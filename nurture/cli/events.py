"""`nurture events`: engagement events that arrive outside `nurture serve` (bounce reports)."""

import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from nurture.cli.context import state
from nurture.cli.output import note, plural, print_json, warning
from nurture.errors import NurtureError

app = typer.Typer(
    help="Engagement events: record bounce reports (DSN messages, an mbox or a maildir).",
    no_args_is_help=True,
)


@app.command("bounces")
def bounces(
    source: Annotated[
        str, typer.Argument(help="A bounce message, an mbox file, a maildir folder, or - (stdin).")
    ],
    json: Annotated[bool, typer.Option("--json", help="Print what was recorded as JSON.")] = False,
) -> None:
    """Record the bounces of delivery status notifications (RFC 3464) against the emails sent.

    Each report is matched to its email by the returned Message-ID (else the last email to the
    recipient) and recorded once; a hard bounce (status 5.x.x) opts the lead out of email.

    \b
    Examples:
      nurture events bounces bounce.eml
      nurture events bounces ~/Maildir/.Bounces
      nurture events bounces - < bounce.eml
    """
    from nurture.engine.bounces import record_reports
    from nurture.rules.bounces import read_bytes, read_path

    reports = list(
        read_bytes(sys.stdin.buffer.read()) if source == "-" else _read(read_path, source)
    )
    with state.store(write=True) as store, store.begin(immediate=True) as connection:
        tally = record_reports(connection, reports, datetime.now(UTC))
    if json:
        print_json(vars(tally))
        return
    for skipped in tally.skipped:
        warning(f"skipped {skipped}")
    for unmatched in tally.unmatched:
        warning(f"no email sent matches the bounce of {unmatched}")
    hard = f" ({tally.hard} hard: opted out of email)" if tally.hard else ""
    again = f"; {plural(tally.repeated, 'bounce')} recorded before" if tally.repeated else ""
    note(f"recorded {plural(tally.recorded, 'bounce')}{hard}{again}")


def _read(read_path: Callable[[Path], Iterator[Any]], source: str) -> list[Any]:
    path = Path(source).expanduser()
    if not path.exists():
        raise NurtureError(f"{source}: no such file or folder")
    import mailbox

    try:
        return list(read_path(path))
    except mailbox.Error as error:
        raise NurtureError(f"{source}: not a mailbox ({error})") from None
    except OSError as error:
        raise NurtureError(f"{source}: {error.strerror or error}") from None
