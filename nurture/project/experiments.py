"""What a plan says of experiments: a step's experiment that starts, changes or ends (the
leads in flight keep their variant), and a canary version in progress or completed.

Ending an experiment is an edit of the file: the step keeps one variant (or its variants go,
leaving one config). Leads that drew another variant and have not run the step yet keep it
until the step has run (nurture.engine.variants); the plan counts them.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a plan against a store not made yet loads no SQLAlchemy
    from nurture.project.applied import Reader


@dataclass(frozen=True)
class ExperimentChange:
    """One step's experiment as the plan changes it."""

    step_id: str
    kind: str  # starts, ends, changes, reweighted
    variants: tuple[str, ...]
    """The variants after the change (the kept one when it ends)."""
    removed: tuple[str, ...] = ()
    in_flight: int = 0
    """Live enrollments that drew a removed variant and have not run the step yet."""

    def text(self) -> str:
        names = ", ".join(self.variants)
        if self.kind == "starts":
            return f"experiment on step {self.step_id} starts: variants {names}"
        if self.kind == "reweighted":
            return (
                f"experiment on step {self.step_id}: new weights ({names}) for new leads; "
                "the leads enrolled already keep their variant"
            )
        keeps = self._keep_their_variant()
        if self.kind == "ends":
            return f"experiment on step {self.step_id} ends: variant {names} kept{keeps}"
        gone = ", ".join(self.removed)
        removed = f"variant {gone} removed, " if gone else ""
        return f"experiment on step {self.step_id} changes: {removed}variants {names}{keeps}"

    def _keep_their_variant(self) -> str:
        if not self.in_flight:
            return ""
        leads = "lead" if self.in_flight == 1 else "leads"
        verb = "keeps its" if self.in_flight == 1 else "keep their"
        return f"; {self.in_flight} {leads} in flight {verb} variant until their step has run"

    def to_dict(self) -> dict[str, Any]:
        return vars(self) | {"variants": list(self.variants), "removed": list(self.removed)}


def experiment_changes(
    session: "Reader | None",
    sequence_id: int | None,
    old: dict[str, Any] | None,
    new: dict[str, Any],
) -> tuple[ExperimentChange, ...]:
    """How the new definition changes each step's experiment (definitions as stored)."""
    before = {step["id"]: step for step in (old or {}).get("steps", [])}
    changes = []
    for step in new["steps"]:
        now, was = _variant_ids(step), _variant_ids(before.get(step["id"], {}))
        if now == was and _weights(step) != _weights(before.get(step["id"], {})):
            shares = tuple(f"{v} {w}" for v, w in _weights(step).items())
            changes.append(ExperimentChange(step["id"], "reweighted", shares))
        if now == was or (not was and len(now) < 2):
            continue
        if not was:
            changes.append(ExperimentChange(step["id"], "starts", now))
            continue
        kept = now or (_kept(step, old, was),)
        removed = tuple(v for v in was if v not in kept)
        flying = _in_flight(session, sequence_id, old, step["id"], removed) if removed else 0
        kind = "ends" if len(kept) == 1 else "changes"
        changes.append(ExperimentChange(step["id"], kind, kept, removed, flying))
    return tuple(changes)


def _variant_ids(step: dict[str, Any]) -> tuple[str, ...]:
    return tuple(variant["id"] for variant in step.get("variants") or [])


def _weights(step: dict[str, Any]) -> dict[str, int]:
    return {variant["id"]: variant["weight"] for variant in step.get("variants") or []}


def _kept(step: dict[str, Any], old: dict[str, Any] | None, was: tuple[str, ...]) -> str:
    """The variant whose config the step kept when its variants went (else "its config")."""
    previous = next(s for s in (old or {})["steps"] if s["id"] == step["id"])
    same = (v["id"] for v in previous["variants"] if v["action_config"] == step["action_config"])
    return next(same, "(a new config)")


def _in_flight(
    session: "Reader | None",
    sequence_id: int | None,
    old: dict[str, Any] | None,
    step_id: str,
    removed: tuple[str, ...],
) -> int:
    """Live enrollments that drew a removed variant of the step and are at it or before it."""
    if session is None or sequence_id is None or old is None:
        return 0
    from nurture.project import applied

    order = [step["id"] for step in old["steps"]]
    rows = applied.live_variants(session, sequence_id)
    position = order.index(step_id)
    return sum(
        1
        for at, drawn in rows
        if (drawn or {}).get(step_id, [None])[0] in removed
        and at in order
        and order.index(at) <= position
    )


@dataclass(frozen=True)
class Canary:
    """A version taking a share of new enrollments while the others stay on the current one."""

    version: int
    share: float
    since: datetime | None
    fingerprint: str

    def text(self, rollout: bool) -> str:
        since = f" since {self.since:%Y-%m-%d %H:%M} UTC" if self.since else ""
        running = f"canary: version {self.version} gets {self.share:.0%} of new enrollments{since}"
        if rollout:
            return f"{running}; apply completes the rollout (every lead moves to it)"
        return running

    def to_dict(self) -> dict[str, Any]:
        return vars(self) | {"since": self.since.isoformat() if self.since else None}


def parse_share(text: str) -> float:
    """`10%` (or `0.1`) as a share of new enrollments; ValueError unless above 0 and below 100%."""
    cleaned = text.strip()
    share = float(cleaned.removesuffix("%")) / 100 if cleaned.endswith("%") else float(cleaned)
    if not 0 < share < 1:
        raise ValueError(f"{text!r} is not a share between 0% and 100% (e.g. 10%)")
    return share
