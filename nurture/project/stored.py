"""Sequence changes that arrive without a file (the HTTP API in read-write mode), and `export`.

A sequence that has a file in the project is changed through its file, by the same functions
as the CLI (the file and the store together). One created over HTTP lives in the store alone:
`nurture plan` reports it as drift until `nurture sequences export NAME` writes its file.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlmodel import Session, col, select

from nurture.errors import Conflict, InvalidSequence, NotFound, NurtureError
from nurture.project import funnels, sequences
from nurture.project.layout import Project
from nurture.project.plan import Plan, SequenceChange, stored_sequences
from nurture.project.sync import apply_changes, change_files, take_turn
from nurture.rules.steps import spec_of
from nurture.spec.diagnostics import data_problems
from nurture.spec.files import SequenceFile
from nurture.spec.keys import union_tags
from nurture.spec.models import SequenceSpec
from nurture.spec.names import numeric_id, slugify
from nurture.spec.templates import check_template, template_fields
from nurture.store.tables import Funnel, FunnelAssignment, Sequence, SequenceVersion


def parse_spec(data: Any, coach_keys: frozenset[str] | None = None) -> SequenceSpec:
    """A sequence from JSON-like data (snake_case or the seed's camelCase), templates checked.

    Raises InvalidSequence with every problem, in `nurture validate`'s words.
    """
    spec: SequenceSpec | None = None
    try:
        spec = SequenceSpec.model_validate(data)
    except ValidationError as error:
        problems = data_problems(error.errors(include_url=False), data, SequenceSpec)
    else:
        problems = []
    for loc, source in template_fields(data):
        problems += [(loc, problem.message) for problem in check_template(source, coach_keys)]
    if spec is None or problems:
        raise InvalidSequence(problems)
    return spec


def field_path(loc: tuple[Any, ...]) -> str:
    """`steps.0.actionConfig.message`: pydantic's location without the union tags it adds."""
    tags = union_tags(SequenceSpec)
    return ".".join(str(part) for part in loc if part not in tags) or "body"


def resolve(session: Session, ref: str) -> Sequence:
    """The live sequence with this numeric id, name or slug."""
    if (number := numeric_id(ref)) is not None:
        row = session.get(Sequence, number)
        if row is not None and row.deleted_at is None:
            return row
    return sequences.find(session, ref)


def current_spec(session: Session, row: Sequence) -> SequenceSpec:
    """A stored sequence as a spec: its current definition, active flag and funnels."""
    version = session.exec(
        select(SequenceVersion).where(
            SequenceVersion.sequence_id == row.id, SequenceVersion.version == row.current_version
        )
    ).one()
    extra = {"active": row.active, "funnels": sequences.funnels_of(session, row.id)}
    return spec_of(version.definition | extra)


def as_files(session: Session, root: Path) -> list[SequenceFile]:
    """Every live sequence as the store holds it, in the shape of a sequence file (dry runs)."""
    return [
        SequenceFile(
            root / (row.source_path or f"{row.slug}.yaml"),
            current_spec(session, row),
            None,  # type: ignore[arg-type]  # a stored sequence has no file to point into
        )
        for row in live_rows(session)
    ]


def file_of(project: Project, slug: str) -> SequenceFile | None:
    return next((file for file in project.files() if file.spec.slug == slug), None)


def create(session: Session, project: Project, spec: SequenceSpec, now: datetime) -> Plan:
    """Add a sequence to the store alone (drift until exported)."""
    take_turn(session)
    taken = stored_sequences(session).get(spec.slug)
    if (taken and taken.row.deleted_at is None) or file_of(project, spec.slug):
        raise Conflict(f"a sequence named {spec.name!r} (slug {spec.slug!r}) exists already")
    return _store_only(session, spec, now, "create")


def replace(
    session: Session, project: Project, row: Sequence, spec: SequenceSpec, now: datetime
) -> Plan:
    """Replace a sequence's definition: its file rewritten and applied, or the store alone."""
    if spec.slug != row.slug:
        raise Conflict(
            f"renaming {row.name!r} to {spec.name!r} is not supported: duplicate it, then delete"
        )
    file = file_of(project, row.slug)
    if file is None:
        return _store_only(session, spec, now, "update")
    return change_files(session, project, now, create={file.path: export_text(spec)})


def set_active(
    session: Session, project: Project, row: Sequence, active: bool | None, now: datetime
) -> Plan:
    """Enable, disable or (None) toggle, like `nurture sequences toggle`."""
    if file_of(project, row.slug) is not None:
        return sequences.set_active(session, project, row.slug, active, now)
    value = (not row.active) if active is None else active
    return _edit_stored(session, row, now, lambda data: data | {"active": value})


def delete(session: Session, project: Project, row: Sequence, now: datetime) -> Plan:
    """Delete like `nurture sequences delete`; the versions stay for history."""
    if file_of(project, row.slug) is not None:
        return sequences.delete(session, project, row.slug, now)
    take_turn(session)
    change = SequenceChange(row.name, row.slug, "delete", row.source_path)
    return apply_changes(session, Plan((change,)), now)


def duplicate(
    session: Session, project: Project, row: Sequence, new_name: str, now: datetime
) -> Plan:
    """An inactive copy under a new name: a new file for a file's sequence, else in the store."""
    if file_of(project, row.slug) is not None:
        return sequences.duplicate(session, project, row.slug, new_name, now)[1]
    data = current_spec(session, row).model_dump(mode="json") | {"name": new_name}
    return create(session, project, parse_spec(data | {"active": False}), now)


def change_funnels(
    session: Session,
    project: Project,
    rows: list[Sequence],
    names: list[str],
    now: datetime,
    *,
    add: bool,
) -> Plan:
    """Assign (or with add=False remove) every funnel to every sequence, files or store."""
    on_file = [row.slug for row in rows if file_of(project, row.slug) is not None]
    change = funnels.assign if add else funnels.unassign
    plan = change(session, project, on_file, names, now) if on_file else Plan(())
    gone = {slugify(name) for name in names}
    for row in (row for row in rows if row.slug not in on_file):
        edit = _with_funnels(names) if add else _without_funnels(gone, row.name)
        plan = Plan((*plan.changes, *_edit_stored(session, row, now, edit).changes))
    return plan


def _with_funnels(names: list[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(data: dict[str, Any]) -> dict[str, Any]:
        have = {slugify(name) for name in data["funnels"]}
        return data | {"funnels": data["funnels"] + [n for n in names if slugify(n) not in have]}

    return edit


def _without_funnels(gone: set[str], name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(data: dict[str, Any]) -> dict[str, Any]:
        missing = gone - {slugify(funnel) for funnel in data["funnels"]}
        if missing:
            raise NurtureError(f"{name} is not assigned to {', '.join(sorted(missing))}")
        return data | {"funnels": [f for f in data["funnels"] if slugify(f) not in gone]}

    return edit


def _edit_stored(
    session: Session, row: Sequence, now: datetime, edit: Callable[[dict[str, Any]], dict]
) -> Plan:
    data = edit(current_spec(session, row).model_dump(mode="json"))
    return _store_only(session, parse_spec(data), now, "update")


def _store_only(session: Session, spec: SequenceSpec, now: datetime, action: str) -> Plan:
    take_turn(session)
    change = SequenceChange(spec.name, spec.slug, action, None, spec=spec)  # type: ignore[arg-type]
    return apply_changes(session, Plan((change,)), now)


@dataclass(frozen=True)
class Exported:
    path: Path
    plan: Plan


def export(session: Session, project: Project, ref: str, now: datetime) -> Exported:
    """Write a store-only sequence's file into the project and record the file in the store."""
    row = resolve(session, ref)
    if file_of(project, row.slug) is not None:
        raise Conflict(f"{row.name!r} has a file already; nothing to export")
    target = project.sequences_dir / f"{row.slug[:100]}.yaml"
    if target.exists():
        raise Conflict(f"{target} exists already (and holds another sequence)")
    text = export_text(current_spec(session, row))
    return Exported(target, change_files(session, project, now, create={target: text}))


def export_text(spec: SequenceSpec) -> str:
    """A sequence file's text: snake_case keys, defaults left out."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    if not data.get("tests"):
        data.pop("tests", None)
    header = "# yaml-language-server: $schema=../schema/sequence.schema.json\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def live_rows(session: Session) -> list[Sequence]:
    """Every live sequence, by name."""
    query = select(Sequence).where(col(Sequence.deleted_at).is_(None)).order_by(Sequence.name)
    return list(session.exec(query))


def funnel_name(session: Session, ref: int | str) -> str:
    """A funnel named by its numeric id or by name (a new name is a funnel assign creates)."""
    if isinstance(ref, int) or numeric_id(ref) is not None:
        number = numeric_id(ref)
        found = session.get(Funnel, number) if number is not None else None
        if found is None:
            raise NotFound(f"no funnel with id {ref}")
        return found.name
    return ref


def assignments(session: Session, row: Sequence) -> list[dict[str, Any]]:
    """The funnels offering the sequence, with when each was assigned."""
    rows = session.exec(
        select(Funnel, FunnelAssignment.created_at)
        .join(FunnelAssignment, col(FunnelAssignment.funnel_id) == col(Funnel.id))
        .where(FunnelAssignment.sequence_id == row.id)
        .order_by(Funnel.name)
    ).all()
    return [
        {"funnel_id": f.id, "funnel": f.name, "slug": f.slug, "assigned_at": at} for f, at in rows
    ]
