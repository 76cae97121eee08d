"""Who gets which arm of an experiment: sticky, deterministic, by weight.

A lead's place in an experiment is a hash of the lead and the experiment's id (BLAKE2b), read
as a number in [0, 1): the same lead always lands in the same place, on every daemon and after
every restart, and a new version that keeps the experiment's id keeps every lead's arm.

    arm(lead_id, step_experiment("warm-lead-welcome", "guide"), [("a", 50), ("b", 50)])
"""

import hashlib
from collections.abc import Sequence
from typing import Any

from nurture.spec.models import SequenceSpec
from nurture.spec.steps import AnyStep

Arms = Sequence[tuple[str, int]]
"""(id, weight) of each arm, in the order the file gives them."""


def bucket(lead_id: int, experiment: str) -> float:
    """The lead's place in the experiment, uniform in [0, 1)."""
    digest = hashlib.blake2b(f"{experiment}\0{lead_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose(place: float, arms: Arms) -> str:
    """The arm whose share of [0, 1), laid out by weight in order, holds `place`."""
    total = sum(weight for _, weight in arms)
    edge = 0.0
    for arm_id, weight in arms:
        edge += weight / total
        if place < edge:
            return arm_id
    return arms[-1][0]  # a rounding error at the top edge


def arm(lead_id: int, experiment: str, arms: Arms) -> str:
    """The arm a lead gets."""
    return choose(bucket(lead_id, experiment), arms)


def step_experiment(sequence_slug: str, step_id: str) -> str:
    """A step's experiment: the same across versions while the step keeps its id."""
    return f"step:{sequence_slug}:{step_id}"


def funnel_experiment(funnel_slug: str) -> str:
    """A funnel's split of new leads between sequences."""
    return f"split:{funnel_slug}"


def canary_experiment(sequence_slug: str, version: int) -> str:
    """A new version's canary: the share of new enrollments it gets."""
    return f"canary:{sequence_slug}:{version}"


def in_canary(lead_id: int, sequence_slug: str, version: int, share: float) -> bool:
    """Whether a new enrollment goes to the canary version."""
    return bucket(lead_id, canary_experiment(sequence_slug, version)) < share


def has_variants(spec: SequenceSpec) -> bool:
    """Whether any step of the version runs an experiment."""
    return any(getattr(step, "variants", None) for step in spec.steps)


def variant_arms(step: AnyStep) -> list[tuple[str, int]]:
    """(id, weight) of a step's variants; empty when it has none."""
    return [(variant.id, variant.weight) for variant in getattr(step, "variants", None) or []]


def assign_variants(lead_id: int, spec: SequenceSpec, version: int) -> dict[str, Any] | None:
    """The variant of every experiment step a new enrollment draws, {step_id: [variant,
    version]} (the version that has it), or None when the version runs no experiment."""
    drawn = {
        step.key: [arm(lead_id, step_experiment(spec.slug, step.key), arms), version]
        for step in spec.steps
        if (arms := variant_arms(step))
    }
    return drawn or None
