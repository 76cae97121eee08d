"""`nurture leads duplicates` and `leads merge`: leads that are one person, found and merged."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from nurture.cli.context import state
from nurture.cli.leads import named
from nurture.cli.options import JSON, LEAD_JSON
from nurture.cli.output import err, note, out, plural, print_json, print_result
from nurture.errors import Aborted

if TYPE_CHECKING:  # the leads service loads SQLAlchemy: imported where a command runs
    from nurture.leads.merge import Merged
    from nurture.store.tables import Lead


def duplicates(json: JSON = False) -> None:
    """Leads that share an email or a phone (stored before identity, or kept apart by it).

    \b
    Examples:
      nurture leads duplicates
      nurture leads duplicates --json
    """
    from nurture.leads.merge import duplicates as found

    with state.session() as session:
        groups = [group.to_dict() for group in found(session)]
    if json:
        print_json(groups)
        return
    if not groups:
        note("No duplicates: every email and phone is one lead's.")
        return
    table = Table("kind", "value", "leads", "merge with")
    for group in groups:
        leads = ", ".join(f"{lead['id']} {lead['name']}" for lead in group["leads"])
        ids = " ".join(str(lead["id"]) for lead in group["leads"])
        table.add_row(group["kind"], escape(group["value"]), escape(leads), f"leads merge {ids}")
    out.print(table)


def merge(
    keep: Annotated[str, typer.Argument(help="The lead to keep: its id, external id or email.")],
    other: Annotated[str, typer.Argument(help="The lead merged into it, then gone.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: LEAD_JSON = False,
) -> None:
    """Merge two leads that are one person: OTHER joins KEEP, then is gone.

    OTHER's history, keys, tags, fields and opt-outs join KEEP (the stricter opt-out wins);
    OTHER is logged and removed. Merging again changes nothing.

    \b
    Examples:
      nurture leads merge 3 7
      nurture leads merge sam@example.com 7 --yes --json
    """
    from nurture.leads import records as service
    from nurture.leads.merge import merge as merge_leads

    with state.session(write=True) as session:
        if not yes:
            _confirm_merge(service.find_lead(session, keep), other)
        done = merge_leads(session, keep, other, datetime.now(UTC))
        shown = service.lead_details(session, done.kept) | {"merge": _merge_dict(done)}
        print_result(shown, json=json, message=_merged(done))


def _confirm_merge(kept: "Lead", other: str) -> None:
    if not err.is_terminal:
        raise Aborted("refusing to merge leads without a terminal to confirm on; add --yes")
    if not typer.confirm(f"Merge lead {other} into lead {named(kept)}?", err=True):
        raise Aborted("merge cancelled")


def _merge_dict(done: "Merged") -> dict[str, Any]:
    return {
        "merged_id": done.merged_id,
        "already": done.already,
        "moved": done.moved,
        "stopped": done.stopped,
    }


def _merged(done: "Merged") -> str:
    if done.already:
        return f"Lead {done.merged_id} was merged into lead {named(done.kept)} already."
    moved = ", ".join(f"{count} {table}" for table, count in done.moved.items()) or "nothing"
    said = f"Merged lead {done.merged_id} into lead {named(done.kept)}; moved {moved}"
    if done.stopped:
        said += f"; stopped {plural(len(done.stopped), 'enrollment')} it ran twice"
    return said + "."
