"""Funnels (lead sources) and which sequences they offer; assignments live in the sequence files."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from nurture.errors import NotFound, NurtureError
from nurture.project.layout import Project
from nurture.project.plan import Plan
from nurture.project.sync import change_files
from nurture.spec.edit import chain, set_funnels, set_split
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


def split(
    session: Session, project: Project, funnel: str, weights: dict[str, int], now: datetime
) -> Plan:
    """Divide the funnel's new leads between sequences by weight (`split:` in their files,
    assigned to the funnel if they were not); sequences left out leave the split."""
    if len(weights) < 2:
        raise NurtureError("a split needs at least two sequences (--split a=50,b=50)")
    slug = slugify(funnel)
    if not slug:
        raise NurtureError(f"funnel {funnel!r} needs a letter or a digit")
    files = project.files()
    named = {project.file_of(name, files).path: weight for name, weight in weights.items()}
    edits = {}
    for file in files:
        weight = named.get(file.path)
        held = next((name for name in file.spec.split if slugify(name) == slug), None)
        if weight is not None:
            key = held or next((f for f in file.spec.funnels if slugify(f) == slug), funnel)
            funnels = _merged(list(file.spec.funnels), [funnel])
            edits[file.path] = chain(set_funnels(funnels), set_split(key, weight))
        elif held is not None:
            edits[file.path] = set_split(held, None)
    return change_files(session, project, now, edits=edits)


def parse_split(text: str) -> dict[str, int]:
    """`a=50,b=50` as {sequence: weight}; NurtureError naming the part that is wrong."""
    weights: dict[str, int] = {}
    for part in text.split(","):
        name, sep, number = (piece.strip() for piece in part.rpartition("="))
        if not sep or not name or not number.isdigit() or int(number) <= 0:
            raise NurtureError(
                f"--split {part.strip()!r}: give sequence=weight, a whole number above 0"
            )
        if slugify(name) in {slugify(known) for known in weights}:
            raise NurtureError(f"--split names {name!r} twice")
        weights[name] = int(number)
    return weights


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
        select(FunnelAssignment.funnel_id, FunnelAssignment.weight, Sequence)
        .join(Sequence, col(Sequence.id) == col(FunnelAssignment.sequence_id))
        .where(col(Sequence.deleted_at).is_(None))
        .order_by(col(Sequence.priority).desc(), Sequence.name)
    ).all()
    offered: dict[int, list[dict[str, Any]]] = {}
    for funnel_id, weight, seq in rows:
        offered.setdefault(funnel_id, []).append(
            {"name": seq.name, "active": seq.active, "priority": seq.priority, "split": weight}
        )
    return [{"name": f.name, "slug": f.slug, "sequences": offered.get(f.id, [])} for f in funnels]
