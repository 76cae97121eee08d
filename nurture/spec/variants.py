"""A step's variants: an A/B test of its action config (two subject lines, two WhatsApp texts).

    variants:
      - {id: a, weight: 50, action_config: {subject: "Your free guide"}}
      - {id: b, weight: 50, action_config: {subject: "{{ lead.first_name }}, your guide"}}

The first variant is the control. A step with variants gives no `action_config` of its own:
it is the control's (so every check of a step's config sees one), filled in before validation.
"""

from typing import Any, Generic, TypeVar

from pydantic import Field, ValidationError, ValidationInfo

from nurture.spec.base import SpecModel, located_error
from nurture.spec.names import slugify

VARIANT_ID = r"^[a-z0-9][a-z0-9_-]*$"
Config = TypeVar("Config", bound=SpecModel)


class Variant(SpecModel, Generic[Config]):
    """One arm of a step's experiment: its id, its share of leads (by weight), its config."""

    id: str = Field(
        pattern=VARIANT_ID, max_length=40, description="Stable; the first is the control."
    )
    weight: int = Field(
        gt=0, le=1_000_000, description="Its share of leads: weight / sum of weights."
    )
    action_config: Config


def variants_field() -> Any:
    """The `variants` field of a step that can have them."""
    return Field(
        None,
        description="An A/B test of the step's action config: two or more variants, the first "
        "the control; each lead gets one, by weight, and keeps it.",
    )


def _given(data: dict[str, Any], snake: str, camel: str) -> Any:
    return data.get(snake, data.get(camel))


def with_control(cls: type[SpecModel], data: Any, info: ValidationInfo) -> Any:
    """`data` with the control's config as the step's own `action_config` (before validation).

    The control is validated here too: when it is invalid an unvalidated placeholder stands in,
    so its problems are reported once, where the file has them (under `variants`)."""
    if not isinstance(data, dict):
        return data
    variants = _given(data, "variants", "variants")
    if not isinstance(variants, list) or not variants:
        return data
    own = _given(data, "action_config", "actionConfig")
    if own is not None:
        raise located_error(
            ("variants",),
            "a step with variants takes no action_config of its own: each variant has one",
        )
    first = variants[0] if isinstance(variants[0], dict) else {}
    config_class = cls.model_fields["action_config"].annotation
    assert isinstance(config_class, type) and issubclass(config_class, SpecModel)
    try:
        control = config_class.model_validate(
            _given(first, "action_config", "actionConfig"), context=info.context
        )
    except ValidationError:
        control = config_class.model_construct()
    return {**data, "action_config": control}


def check_variants(variants: list[Any] | None) -> None:
    """At least two, ids unique (a located error names the offending one)."""
    if variants is None:
        return
    if len(variants) < 2:
        raise located_error(
            ("variants",),
            "an experiment needs at least two variants (remove `variants` to keep one)",
        )
    seen: dict[str, int] = {}
    for index, variant in enumerate(variants):
        if variant.id in seen:
            raise located_error(
                ("variants", index, "id"),
                f"duplicate variant id {variant.id!r} (also variant {seen[variant.id] + 1})",
            )
        seen[variant.id] = index


def check_split(split: dict[str, int], funnels: list[str]) -> None:
    """A sequence splits only funnels it is assigned to."""
    assigned = {slugify(name) for name in funnels}
    for funnel in split:
        if slugify(funnel) not in assigned:
            raise located_error(
                ("split", funnel),
                f"funnel {funnel!r} is in the split but not in `funnels`: assign it too",
            )


def variant_problem(spec: Any, step_id: str, variant_id: str) -> str | None:
    """Why a step's variant cannot be pinned (`nurture test --variant`), or None."""
    from nurture.spec.diagnostics import did_you_mean

    steps = {step.key: step for step in spec.steps}
    step = steps.get(step_id)
    if step is None:
        return f"no step {step_id!r}{did_you_mean(step_id, list(steps))}"
    ids = [variant.id for variant in getattr(step, "variants", None) or []]
    if not ids:
        return f"step {step_id!r} has no variants"
    if variant_id not in ids:
        return f"step {step_id!r} has no variant {variant_id!r} (it has {', '.join(ids)})"
    return None
