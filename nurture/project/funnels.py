"""Funnels (lead sources) and which sequences they offer; assignments live in the sequence files."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from nurture.errors import NotFound, NurtureError
from nurture.project.layout import Project
from nurture.project.plan import Plan
from nurture.project.sync import change_files
from nurture.spec.edit import set_funnels
from nurture.spec.names import slugify
from nurture.store.tables import Funnel, FunnelAssignment, Sequence


def assign(
    session: Session, project: Project, sequences: list[str], funnels: list[str], now: datetime
) -> Plan:
    """Add every funnel to every sequence (the bulk operation), in the files and the store."""
    return _change(session, project, sequences, lambda current: _merged(current, funnels), now)


def unassign(
    session: Session, project: Project, sequences: list[str], funnels: list[str], now: datetime
) -> Plan:
    """Remove every funnel from every sequence."""
    gone = {slugify(name) for name in funnels}
    files = project.files()
    assigned = {slugify(f) for name in sequences for f in project.file_of(name, files).spec.funnels}
    missing = [name for name in funnels if slugify(name) not in assigned]
    if missing:
        raise NotFound(f"not assigned to {', '.join(sequences)}: {', '.join(missing)}")
    return _change(
        session,
        project,
        sequences,
        lambda current: [f for f in current if slugify(f) not in gone],
        now,
    )


def _merged(current: list[str], added: list[str]) -> list[str]:
    """`current` plus each added funnel whose slug is new (`Instagram Ads` is `instagram-ads`)."""
    merged = list(current)
    for name in added:
        if not slugify(name):
            raise NurtureError(f"funnel {name!r} needs a letter or a digit")
        if slugify(name) not in {slugify(have) for have in merged}:
            merged.append(name)
    return merged


def _change(
    session: Session,
    project: Project,
    sequences: list[str],
    compute: Callable[[list[str]], list[str]],
    now: datetime,
) -> Plan:
    if not sequences:
        raise NurtureError("name at least one sequence (--sequence)")
    files = project.files()
    edits = {}
    for file in [project.file_of(name, files) for name in sequences]:
        wanted = compute(list(file.spec.funnels))
        if wanted != list(file.spec.funnels):
            edits[file.path] = set_funnels(wanted)
    return change_files(session, project, now, edits=edits)


def funnel_table(session: Session) -> list[dict[str, Any]]:
    """Every funnel with the live sequences it offers, best first (priority, then name)."""
    funnels = session.exec(select(Funnel).order_by(Funnel.name)).all()
    rows = session.exec(
        select(FunnelAssignment.funnel_id, Sequence)
        .join(Sequence, col(Sequence.id) == col(FunnelAssignment.sequence_id))
        .where(col(Sequence.deleted_at).is_(None))
        .order_by(col(Sequence.priority).desc(), Sequence.name)
    ).all()
    offered: dict[int, list[dict[str, Any]]] = {}
    for funnel_id, seq in rows:
        offered.setdefault(funnel_id, []).append(
            {"name": seq.name, "active": seq.active, "priority": seq.priority}
        )
    return [{"name": f.name, "slug": f.slug, "sequences": offered.get(f.id, [])} for f in funnels]
