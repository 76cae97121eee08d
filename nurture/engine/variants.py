"""The config a step runs for one lead: its variant's, when the step runs an experiment.

A lead keeps the variant it drew at enrollment (`enrollment.variants`), even when the
experiment ends (a new version keeps one variant) before its step has run: then the variant
comes from the version that had it. A step given variants after the lead enrolled draws now.
"""

from collections.abc import Callable
from typing import Any

from nurture.rules import experiments
from nurture.spec.models import SequenceSpec
from nurture.spec.steps import AnyStep

SpecOf = Callable[[int], SequenceSpec]
"""The parsed version of the job's sequence, by version number."""
_copies: dict[tuple[int, str], tuple[AnyStep, AnyStep]] = {}


def pick(
    step: AnyStep, lead_id: int, slug: str, drawn: dict[str, Any] | None, spec_of: SpecOf
) -> tuple[AnyStep, str | None]:
    """The step as this lead runs it (its variant's config), and the variant (None: none)."""
    recorded = (drawn or {}).get(step.key)
    if recorded:
        variant_id, version = recorded
        config = _config(step, variant_id)
        if config is None:  # the experiment ended (or changed) after the lead drew it
            config = _config(_step_in(spec_of(version), step.key), variant_id)
        if config is not None:
            return _with_config(step, variant_id, config), variant_id
    arms = experiments.variant_arms(step)
    if not arms:
        return step, None
    variant_id = experiments.arm(lead_id, experiments.step_experiment(slug, step.key), arms)
    return _with_config(step, variant_id, _config(step, variant_id)), variant_id


def _step_in(spec: SequenceSpec, step_id: str) -> AnyStep | None:
    return next((step for step in spec.steps if step.key == step_id), None)


def _config(step: AnyStep | None, variant_id: str) -> Any:
    variants = getattr(step, "variants", None) or []
    return next((v.action_config for v in variants if v.id == variant_id), None)


def _with_config(step: AnyStep, variant_id: str, config: Any) -> AnyStep:
    """A copy of the step with the variant's config, made once per step and variant (a parsed
    version lives as long as the process: its steps are never collected)."""
    key = (id(step), variant_id)
    cached = _copies.get(key)
    if cached is None or cached[0] is not step:
        cached = _copies[key] = (step, step.model_copy(update={"action_config": config}))
    return cached[1]
