"""plan: what `apply` would change in the store to make it match the sequence files."""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nurture.project.experiments import Canary, ExperimentChange, experiment_changes
from nurture.spec.files import SequenceFile
from nurture.spec.models import SequenceSpec
from nurture.spec.names import slugify

if TYPE_CHECKING:  # a plan against a store not made yet loads no SQLAlchemy
    from sqlalchemy import Row

    from nurture.project.applied import Reader

Action = Literal["create", "update", "delete", "unchanged", "drift"]


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class StepChange:
    step_id: str
    kind: Literal["added", "removed", "changed", "moved"]
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class SequenceChange:
    """One sequence's line in the plan; `drift` is in the store with no file."""

    name: str
    slug: str
    action: Action
    path: str | None = None
    fields: tuple[FieldChange, ...] = ()
    steps: tuple[StepChange, ...] = ()
    new_version: bool = False
    spec: SequenceSpec | None = field(default=None, compare=False, repr=False)
    in_flight: int = 0
    """Enrollments of this sequence still running (active, running, paused)."""
    experiments: tuple[ExperimentChange, ...] = ()
    canary: Canary | None = None
    """A canary in progress (a version taking a share of new enrollments)."""
    rollout: bool = False
    """The file is the canary's version: apply makes it the current one for every lead."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "path": self.path,
            "new_version": self.new_version,
            "in_flight": self.in_flight,
            "fields": [vars(change) for change in self.fields],
            "steps": [vars(change) | {"fields": list(change.fields)} for change in self.steps],
            "experiments": [change.to_dict() for change in self.experiments],
            "canary": self.canary.to_dict() if self.canary else None,
            "rollout": self.rollout,
        }


@dataclass(frozen=True)
class Plan:
    changes: tuple[SequenceChange, ...]

    def by_action(self, action: Action) -> list[SequenceChange]:
        return [change for change in self.changes if change.action == action]

    @property
    def has_changes(self) -> bool:
        """True when apply would write anything (drift is only reported)."""
        return any(change.action in ("create", "update", "delete") for change in self.changes)

    def counts(self) -> dict[str, int]:
        actions: tuple[Action, ...] = ("create", "update", "delete", "unchanged", "drift")
        return {action: len(self.by_action(action)) for action in actions}

    def to_dict(self) -> dict[str, Any]:
        return {
            "has_changes": self.has_changes,
            "counts": self.counts(),
            "sequences": [change.to_dict() for change in self.changes],
        }


@dataclass(frozen=True)
class StoredSequence:
    """The store's side of a comparison: the sequence's row (its columns as attributes: id,
    name, slug, active, fingerprint, source_path, deleted_at), its current definition and its
    funnels."""

    row: "Row"
    definition: dict[str, Any]
    funnels: frozenset[str]
    canary: Canary | None = None
    split: dict[str, int] = field(default_factory=dict)
    """The sequence's weight in each funnel's split (by funnel slug)."""


def stored_sequences(reader: "Reader | None") -> dict[str, StoredSequence]:
    """Every sequence in the store by slug, deleted ones included (a file may bring one back);
    none without a store (`reader` None: the store is not made yet)."""
    if reader is None:
        return {}
    from nurture.project import applied

    funnels = applied.funnel_slugs(reader)
    rows = applied.sequences(reader)
    canary = applied.canaries(reader, rows)
    return {
        row.slug: StoredSequence(
            row,
            row.definition,
            frozenset(funnels.get(row.id, {})),
            canary.get(row.id),
            {slug: weight for slug, weight in funnels.get(row.id, {}).items() if weight},
        )
        for row in rows
    }


def build_plan(
    session: "Reader | None",
    files: Iterable[SequenceFile],
    *,
    root: Path,
    prune: bool = False,
    complete: bool = True,
) -> Plan:
    """Compare files with the store (None: a store not made yet, which holds nothing).
    `complete=False`: the files are a subset, look at nothing else."""
    stored = stored_sequences(session)
    changes = [_compare(session, file, stored.get(file.spec.slug), root) for file in files]
    if complete:
        named = {change.slug for change in changes}
        changes += [
            _absent(entry, prune)
            for slug, entry in sorted(stored.items())
            if slug not in named and entry.row.deleted_at is None
        ]
    return Plan(tuple(_with_in_flight(session, changes, stored)))


def _with_in_flight(
    reader: "Reader | None", changes: list[SequenceChange], stored: dict[str, StoredSequence]
) -> list[SequenceChange]:
    if reader is None or not stored:
        return changes
    from nurture.project.applied import in_flight

    ids = {slug: entry.row.id for slug, entry in stored.items()}
    counts = in_flight(reader, ids.values())
    return [
        replace(change, in_flight=counts.get(ids[change.slug], 0) if change.slug in ids else 0)
        for change in changes
    ]


def _absent(entry: StoredSequence, prune: bool) -> SequenceChange:
    return SequenceChange(
        entry.row.name, entry.row.slug, "delete" if prune else "drift", entry.row.source_path
    )


def _compare(
    session: "Reader | None", file: SequenceFile, entry: StoredSequence | None, root: Path
) -> SequenceChange:
    spec, path = file.spec, relative_path(file.path, root)
    definition = spec.definition()
    if entry is None or entry.row.deleted_at is not None:
        fresh = entry is None or entry.row.fingerprint != spec.fingerprint()
        started = experiment_changes(session, None, None, definition)
        return SequenceChange(
            spec.name, spec.slug, "create", path, new_version=fresh, spec=spec, experiments=started
        )
    fields = _state_changes(spec, entry) + _field_changes(entry.definition, definition)
    if entry.row.source_path != path:
        fields.append(FieldChange("file", entry.row.source_path, path))
    steps = step_changes(entry.definition["steps"], definition["steps"])
    fingerprint, canary = spec.fingerprint(), entry.canary
    rollout = canary is not None and canary.fingerprint == fingerprint
    new_version = fingerprint != entry.row.fingerprint and not rollout
    if canary is not None and fingerprint == entry.row.fingerprint:  # back to the current one
        fields.append(FieldChange("canary", f"version {canary.version}", None))
    action: Action = "update" if fields or steps or new_version or rollout else "unchanged"
    experiments = experiment_changes(session, entry.row.id, entry.definition, definition)
    return SequenceChange(
        spec.name,
        spec.slug,
        action,
        path,
        tuple(fields),
        steps,
        new_version,
        spec=spec,
        experiments=experiments,
        canary=canary,
        rollout=rollout,
    )


def _state_changes(spec: SequenceSpec, entry: StoredSequence) -> list[FieldChange]:
    changes = []
    if spec.active != entry.row.active:
        changes.append(FieldChange("active", entry.row.active, spec.active))
    wanted = frozenset(slugify(name) for name in spec.funnels)
    if wanted != entry.funnels:
        changes.append(FieldChange("funnels", sorted(entry.funnels), sorted(wanted)))
    split = {slugify(name): weight for name, weight in spec.split.items()}
    if split != entry.split:
        changes.append(FieldChange("split", entry.split, split))
    return changes


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[FieldChange]:
    keys = [key for key in new if key != "steps"]
    return [FieldChange(key, old.get(key), new[key]) for key in keys if old.get(key) != new[key]]


def step_changes(old: list[dict], new: list[dict]) -> tuple[StepChange, ...]:
    """Steps added, removed, changed (which fields) and moved, matched by their stable id."""
    old_by_id = {step["id"]: step for step in old}
    new_by_id = {step["id"]: step for step in new}
    common_old = [step["id"] for step in old if step["id"] in new_by_id]
    common_new = [step["id"] for step in new if step["id"] in old_by_id]
    changes = []
    for step_id in new_by_id.keys() - old_by_id.keys():
        changes.append(StepChange(step_id, "added"))
    for step_id in old_by_id.keys() - new_by_id.keys():
        changes.append(StepChange(step_id, "removed"))
    for step_id in common_new:
        before, after = old_by_id[step_id], new_by_id[step_id]
        differing = tuple(key for key in after if before.get(key) != after[key])
        if differing:
            changes.append(StepChange(step_id, "changed", differing))
        if common_old.index(step_id) != common_new.index(step_id):
            changes.append(StepChange(step_id, "moved"))
    order: dict[str, int] = {}
    for index, step in enumerate(new + old):
        order.setdefault(step["id"], index)
    return tuple(sorted(changes, key=lambda change: order[change.step_id]))


def relative_path(path: Path, root: Path) -> str:
    """A path as the user wrote it in the project: relative to the project root when inside it."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
