"""Sequences in the store, and the commands that change them (file and store together)."""

from datetime import datetime
from pathlib import Path
from typing import Any, overload

from sqlmodel import Session, col, select

from nurture.errors import NotFound, NurtureError
from nurture.project.layout import Project, did_you_mean
from nurture.project.plan import Plan
from nurture.project.sync import change_files
from nurture.spec.categories import category_named
from nurture.spec.edit import chain, drop_key, edit_text, set_key
from nurture.spec.files import SequenceFile
from nurture.spec.names import slugify
from nurture.store.tables import Funnel, FunnelAssignment, Sequence, SequenceVersion


def find(session: Session, name: str, *, deleted: bool = False) -> Sequence:
    """The live sequence with this name or slug (`deleted`: a deleted one too)."""
    live = True if deleted else col(Sequence.deleted_at).is_(None)
    row = session.exec(select(Sequence).where(Sequence.slug == slugify(name), live)).first()
    if row is None:
        names = list(session.exec(select(Sequence.name).where(live)))
        raise NotFound(
            f"no sequence {name!r} in the store" + did_you_mean(name, names, by_word=True)
        )
    return row


def funnels_of(session: Session, sequence_id: int) -> list[str]:
    return list(
        session.exec(
            select(Funnel.name)
            .join(FunnelAssignment, col(FunnelAssignment.funnel_id) == col(Funnel.id))
            .where(FunnelAssignment.sequence_id == sequence_id)
            .order_by(Funnel.name)
        )
    )


def summaries(
    session: Session, *, category: str | None = None, active: bool | None = None
) -> list[dict[str, Any]]:
    """One line per live sequence, ordered by name."""
    query = (
        select(Sequence, SequenceVersion)
        .join(
            SequenceVersion,
            (col(SequenceVersion.sequence_id) == col(Sequence.id))
            & (SequenceVersion.version == Sequence.current_version),
        )
        .where(col(Sequence.deleted_at).is_(None))
        .order_by(Sequence.name)
    )
    if category:
        query = query.where(Sequence.category == category_named(category))
    if active is not None:
        query = query.where(Sequence.active == active)
    return [_summary(session, row, version) for row, version in session.exec(query)]


def _summary(session: Session, row: Sequence, version: SequenceVersion) -> dict[str, Any]:
    return {
        "name": row.name,
        "slug": row.slug,
        "category": row.category,
        "active": row.active,
        "priority": row.priority,
        "version": row.current_version,
        "steps": len(version.definition["steps"]),
        "funnels": funnels_of(session, row.id),
        "path": row.source_path,
    }


def describe(session: Session, name: str) -> dict[str, Any]:
    """A sequence in full: its current definition, funnels and every version."""
    row = find(session, name)
    versions = session.exec(
        select(SequenceVersion)
        .where(SequenceVersion.sequence_id == row.id)
        .order_by(col(SequenceVersion.version))
    ).all()
    current = versions[-1]
    return {
        **_summary(session, row, current),
        "description": row.description,
        "definition": current.definition,
        "versions": [
            {
                "version": v.version,
                "fingerprint": v.fingerprint[:12],
                "applied_at": v.applied_at,
                "steps": len(v.definition["steps"]),
                "path": v.source_path,
            }
            for v in versions
        ],
    }


def set_active(
    session: Session, project: Project, name: str, active: bool | None, now: datetime
) -> Plan:
    """Enable, disable (or with None, toggle) a sequence in its file and the store."""
    file = project.file_of(name)
    value = (not file.spec.active) if active is None else active
    return change_files(session, project, now, edits={file.path: set_key("active", value)})


def delete(session: Session, project: Project, name: str, now: datetime) -> Plan:
    """Remove the sequence's file and delete it from the store (its versions stay for history)."""
    file = project.file_of(name)
    return change_files(session, project, now, delete=file.path)


@overload
def duplicate(
    session: Session, project: Project, name: str, new_name: str, now: datetime
) -> tuple[Path, Plan]: ...
@overload
def duplicate(
    session: None, project: Project, name: str, new_name: str, now: datetime
) -> tuple[Path, None]: ...
def duplicate(
    session: Session | None, project: Project, name: str, new_name: str, now: datetime
) -> tuple[Path, Plan | None]:
    """Copy a sequence's file under a new name, inactive; apply it when a session is given."""
    files = project.files()
    source = project.file_of(name, files)
    target = new_path(project, new_name, files, session)
    text = edit_text(
        source.path.read_text(encoding="utf-8"),
        # the cases are the original's: they expect it, not the copy, to take their leads
        chain(set_key("name", new_name), set_key("active", False), drop_key("tests")),
    )
    if session is None:
        target.write_text(text, encoding="utf-8")
        project.files()  # the copy must be valid like every other file
        return target, None
    return target, change_files(session, project, now, create={target: text})


def new_path(
    project: Project,
    name: str,
    files: list[SequenceFile] | None = None,
    session: Session | None = None,
) -> Path:
    """The file a new sequence called `name` goes in; NurtureError when its slug is taken."""
    slug = slugify(name)
    if not slug:
        raise NurtureError(
            f"the name {name!r} needs a letter or a digit (commands address sequences by slug)"
        )
    files = project.files() if files is None else files
    taken = {file.spec.slug: file.spec.name for file in files}
    if session is not None:
        taken |= {row.slug: row.name for row in _live(session)}
    if slug in taken:
        raise NurtureError(
            f"{name!r} has the same slug {slug!r} as the existing sequence {taken[slug]!r}"
        )
    target = project.sequences_dir / f"{slug[:100]}.yaml"
    if target.exists():
        raise NurtureError(f"{target} already exists")
    return target


def new_sequence(project: Project, name: str, template: str | None = None) -> Path:
    """Write a new sequence file called `name`, from a template of the library or blank."""
    from nurture.project.library import sequence_text

    text = sequence_text(name, template)
    target = new_path(project, name)
    target.write_text(text, encoding="utf-8")
    try:
        project.files()  # the new file must be valid like every other file
    except NurtureError:
        target.unlink()
        raise
    return target


def _live(session: Session) -> list[Sequence]:
    return list(session.exec(select(Sequence).where(col(Sequence.deleted_at).is_(None))))
