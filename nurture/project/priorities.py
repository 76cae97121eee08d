"""Reorder the sequences a funnel offers: each one's `priority` raised just enough that matching
tries them in the order asked (a sequence's priority holds in every funnel that offers it)."""

from datetime import datetime

from sqlmodel import Session

from nurture.errors import NurtureError
from nurture.project import stored
from nurture.project.layout import Project
from nurture.project.plan import Plan
from nurture.project.sync import change_files
from nurture.spec.edit import set_key
from nurture.store.tables import Sequence


def ordered_priorities(current: list[int]) -> list[int]:
    """Priorities for these sequences, best first, strictly falling: the last keeps its own,
    each one above it keeps its own when already higher, else becomes one more."""
    wanted = list(current)
    for index in range(len(wanted) - 2, -1, -1):
        wanted[index] = max(wanted[index], wanted[index + 1] + 1)
    return wanted


def reorder(session: Session, project: Project, refs: list[str], now: datetime) -> Plan:
    """Give the sequences named (best first) priorities in that order, in their files (comments
    kept) and the store; a sequence in the store alone is changed there."""
    rows = [stored.resolve(session, ref) for ref in refs]
    if len({row.slug for row in rows}) != len(rows):
        raise NurtureError("a sequence is named twice in the order")
    wanted = ordered_priorities([row.priority for row in rows])
    changed = [(row, p) for row, p in zip(rows, wanted, strict=True) if p != row.priority]
    files = {row.slug: stored.file_of(project, row.slug) for row, _ in changed}
    edits = {
        file.path: set_key("priority", priority)
        for row, priority in changed
        if (file := files[row.slug]) is not None
    }
    plan = change_files(session, project, now, edits=edits) if edits else Plan(())
    for row, priority in ((r, p) for r, p in changed if files[r.slug] is None):
        plan = Plan((*plan.changes, *_store_priority(session, project, row, priority, now).changes))
    return plan


def _store_priority(
    session: Session, project: Project, row: Sequence, priority: int, now: datetime
) -> Plan:
    data = stored.current_spec(session, row).model_dump(mode="json") | {"priority": priority}
    return stored.replace(session, project, row, stored.parse_spec(data), now)
