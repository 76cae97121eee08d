"""Where an enrollment stands in its sequence: the parsed versions, its step, the next one.

A stored version re-validates as a SequenceSpec once, then comes from a cache keyed by
(store, sequence, version): versions never change once applied.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nurture.spec.models import SequenceSpec
from nurture.spec.steps import AnyStep
from nurture.spec.times import STORED

LIVE = ("active", "running", "paused")
"""Statuses of an enrollment that still runs (conversion stops these)."""

Loader = Callable[[int, int], dict[str, Any]]
_specs: dict[tuple[str, int, int], SequenceSpec] = {}


def spec_of(definition: dict[str, Any]) -> SequenceSpec:
    """The spec of a stored version's definition."""
    return SequenceSpec.model_validate(definition | {"tests": []}, context=STORED)


def cached_spec(store_url: str, sequence_id: int, version: int, load: Loader) -> SequenceSpec:
    """The parsed sequence version, `load(sequence_id, version)` giving its definition on a miss."""
    key = (store_url, sequence_id, version)
    spec = _specs.get(key)
    if spec is None:
        spec = _specs[key] = spec_of(load(sequence_id, version))
    return spec


def index_of(spec: SequenceSpec, step_id: str | None) -> int | None:
    """The position of a step id in a version; the first step for None."""
    if step_id is None:
        return 0
    return next((i for i, step in enumerate(spec.steps) if step.id == step_id), None)


def next_step(spec: SequenceSpec, step_id: str) -> AnyStep | None:
    """The step after `step_id`, or None at the end."""
    index = index_of(spec, step_id)
    following = spec.steps[index + 1 :] if index is not None else []
    return following[0] if following else None


@dataclass(frozen=True)
class Position:
    """The step to run in the current version; `removed` is a step the new version dropped."""

    spec: SequenceSpec
    version: int
    step: AnyStep | None
    removed: AnyStep | None = None
    after: AnyStep | None = None
    """The step after `step` in the current version (None at the end)."""


def locate(old: SequenceSpec, current: SequenceSpec, version: int, step_id: str | None) -> Position:
    """Move to the current version at the same step id; a removed step gives way to the next
    step of the old version that the current one still has (None: the sequence is over)."""
    index = index_of(current, step_id)
    if index is not None:
        return Position(current, version, current.steps[index], after=_after(current, index))
    old_index = index_of(old, step_id)
    removed = old.steps[old_index] if old_index is not None else None
    later = old.steps[old_index + 1 :] if old_index is not None else []
    kept = next((i for s in later if (i := index_of(current, s.key)) is not None), None)
    if kept is None:
        return Position(current, version, None, removed)
    return Position(current, version, current.steps[kept], removed, _after(current, kept))


def _after(spec: SequenceSpec, index: int) -> AnyStep | None:
    return spec.steps[index + 1] if index + 1 < len(spec.steps) else None
