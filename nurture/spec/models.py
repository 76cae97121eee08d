"""A sequence file as pydantic models: identity, triggers, settings, ordered steps, test cases."""

import hashlib
import json
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    ValidationInfo,
    model_validator,
)

from nurture.spec import actions as a
from nurture.spec.base import SpecModel, located_error
from nurture.spec.cases import TestCase
from nurture.spec.categories import Category
from nurture.spec.conditions import ENGAGEMENT_CONDITIONS, TriggerConditions
from nurture.spec.diagnostics import did_you_mean
from nurture.spec.durations import format_duration
from nurture.spec.events import ENGAGEMENT_EVENTS, parse_event
from nurture.spec.names import slugify
from nurture.spec.steps import RETRY_FIELDS, Step
from nurture.spec.times import LONGEST_WAIT, TEN_YEARS, is_stored
from nurture.spec.variants import (
    check_split,
    variant_problem,
)
from nurture.spec.window import SendWindow

ReEntry = Literal["never", "after_exit", "always"]
FailurePolicy = Literal["continue", "stop"]
UNVERSIONED = frozenset({"tests", "active", "funnels", "split"})
"""Changing these makes no new version: they say where and whether a sequence runs, not what."""
ADDED_LATER: dict[str, Any] = {"stop_on_reply": False, "exclusive": False, "track_links": False}
STEP_ADDED_LATER: dict[str, Any] = {
    "stop": False,
    "variants": None,
    "relative_to": None,
    "before": False,
    "wait_for": None,
}
CONFIG_ADDED_LATER: dict[str, Any] = {"mode": "fixed", "stop_on": [], "converts_on": []}
CONDITION_ADDED_LATER: dict[str, Any] = {"appointment": None}
"""Settings (of a sequence, of a step) newer than the first format, left out of a definition at
their default: upgrading nurture must not make every applied sequence look changed."""


class SequenceSpec(SpecModel):
    """One sequence file."""

    name: str = Field(
        min_length=1,
        max_length=200,
        description="Unique in the project; commands accept it or its slug.",
    )
    description: str = ""
    category: Category = "custom"
    active: bool = True
    priority: int = Field(
        0,
        ge=-1_000_000,
        le=1_000_000,
        description="Higher wins when several sequences match a lead.",
    )
    funnels: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list)
    split: dict[str, Annotated[int, Field(gt=0, le=1_000_000)]] = Field(
        default_factory=dict,
        description="This sequence's weight in a funnel's split of new leads (funnel: weight): "
        "each lead of the funnel goes to one sequence of the split, by weight, and stays.",
    )
    trigger_conditions: TriggerConditions = Field(default_factory=TriggerConditions)
    max_retries: int = Field(3, ge=0, le=20)
    retry_delay: a.Duration = Field(timedelta(minutes=15))
    retry_backoff: float = Field(
        2.0, ge=1.0, le=10.0, description="Each retry waits this many times longer."
    )
    stop_on_conversion: bool = True
    stop_on_reply: bool = Field(
        False,
        description="A message from the lead (an inbound SMS or WhatsApp) ends the enrollment.",
    )
    track_links: bool = Field(
        False,
        description="Every web address in this sequence's messages becomes a tracked link "
        "(`nurture serve`'s /c/ page counts the click, then redirects).",
    )
    manual_advance: bool = False
    re_entry: ReEntry = "never"
    exclusive: bool = Field(
        False,
        description="A lead runs at most one exclusive sequence at a time: the highest priority "
        "(then the first enrolled); the others wait (re_entry after_exit or always) or end "
        "(re_entry never).",
    )
    send_window: SendWindow | None = None
    failure_policy: FailurePolicy = Field(
        "continue", description="After the last retry: next step or stop."
    )
    steps: list[Step] = Field(min_length=1)
    tests: list[TestCase] = Field(default_factory=list)

    @property
    def slug(self) -> str:
        return slugify(self.name)

    @model_validator(mode="after")
    def _unique_step_ids(self) -> Self:
        seen: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            if step.key in seen:
                raise located_error(
                    ("steps", index, "id"),
                    f"duplicate step id {step.key!r} (also step {seen[step.key] + 1}); give one an explicit 'id'",
                )
            seen[step.key] = index
        return self

    @model_validator(mode="after")
    def _retries_within_ten_years(self, info: ValidationInfo) -> Self:
        """The last retry waits retry_delay * retry_backoff ** (max_retries - 1) (completion.py)."""
        last = self.max_retries
        seconds = self.retry_delay.total_seconds() * self.retry_backoff ** max(last - 1, 0)
        if last and seconds > LONGEST_WAIT.total_seconds() and not is_stored(info):
            place = next((name for name in RETRY_FIELDS if name in self.model_fields_set), "")
            raise located_error(
                (place or "max_retries",),
                f"retry {last} would wait {_days(seconds)} (retry_delay × retry_backoff^{last - 1}),"
                f" more than {TEN_YEARS}: lower max_retries, retry_backoff or retry_delay",
            )
        return self

    @model_validator(mode="after")
    def _steps_in_number_order(self) -> Self:
        numbered = [
            (i, s.step_number) for i, s in enumerate(self.steps) if s.step_number is not None
        ]
        for (_, before), (index, number) in zip(numbered, numbered[1:], strict=False):
            if number <= before:
                raise located_error(
                    ("steps", index, "step_number"),
                    f"step_number {number} after {before}: steps run in list order, so list them by number",
                )
        return self

    @model_validator(mode="after")
    def _funnels_differ(self) -> Self:
        seen: dict[str, str] = {}
        for index, funnel in enumerate(self.funnels):
            slug = slugify(funnel)
            if not slug:
                raise located_error(
                    ("funnels", index), f"funnel {funnel!r} needs a letter or a digit"
                )
            if slug in seen:
                raise located_error(
                    ("funnels", index),
                    f"funnel {funnel!r} is {seen[slug]!r} again (same slug {slug!r})",
                )
            seen[slug] = funnel
        return self

    @model_validator(mode="after")
    def _split_of_own_funnels(self) -> Self:
        check_split(self.split, self.funnels)
        return self

    @model_validator(mode="after")
    def _cases_name_known_steps(self) -> Self:
        ids = {step.id for step in self.steps}
        for index, case in enumerate(self.tests):
            for step_id, variant_id in case.variants.items():
                problem = variant_problem(self, step_id, variant_id)
                if problem:
                    raise located_error(("tests", index, "variants", step_id), problem)
            for key, step_id in case.expect.step_ids():
                if step_id not in ids:
                    raise located_error(
                        ("tests", index, "expect", key),
                        f"test {case.name!r} names step {step_id!r}, which this sequence does not have",
                    )
            for place, text in enumerate(case.events):
                event = parse_event(text)
                if event.kind in ENGAGEMENT_EVENTS and event.value not in ids:
                    raise located_error(
                        ("tests", index, "events", place),
                        f"{text!r}: no step {event.value!r} in this sequence"
                        + did_you_mean(event.value or "", [i for i in ids if i]),
                    )
        return self

    @model_validator(mode="after")
    def _conditions_name_known_steps(self) -> Self:
        ids = [step.key for step in self.steps]
        for index, step in enumerate(self.steps):
            for name, step_id in step.conditions.named_steps() if step.conditions else []:
                if step_id not in ids:
                    raise located_error(
                        ("steps", index, "conditions", name),
                        f"no step {step_id!r} in this sequence{did_you_mean(step_id, ids)}",
                    )
                if ids.index(step_id) >= index:
                    raise located_error(
                        ("steps", index, "conditions", name),
                        f"step {step_id!r} does not come before step {step.key!r}",
                    )
        return self

    def definition(self) -> dict[str, Any]:
        """What runs to a lead, versioned: all but the test cases, the active flag and the funnels."""
        definition = self.model_dump(mode="json", exclude=set(UNVERSIONED))
        steps = definition["steps"]
        for part, added in (
            [(definition, ADDED_LATER), (definition["trigger_conditions"], CONDITION_ADDED_LATER)]
            + [(step, STEP_ADDED_LATER) for step in steps]
            + [(config, CONFIG_ADDED_LATER) for step in steps for config in _configs(step)]
            + [(step["conditions"], CONDITION_ADDED_LATER) for step in steps if step["conditions"]]
        ):
            for key, default in added.items():
                if key in part and part[key] == default:
                    del part[key]
        for step in definition["steps"]:
            conditions = step.get("conditions") or {}
            for key in ENGAGEMENT_CONDITIONS:
                if key in conditions and conditions[key] is None:
                    del conditions[key]
        return definition

    def fingerprint(self) -> str:
        """A hash of the definition: equal fingerprints, nothing to apply."""
        canonical = json.dumps(self.definition(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _configs(step: dict[str, Any]) -> list[dict[str, Any]]:
    """A dumped step's action configs: its own, or its variants' (nurture.spec.variants)."""
    if "action_config" in step:
        return [step["action_config"]]
    return [variant["action_config"] for variant in step.get("variants") or []]


def _days(seconds: float) -> str:
    """A wait of any size in days (`1d 4h`), one too long for a timedelta roughly (`3.21e+15d`)."""
    if seconds < timedelta(days=100_000_000).total_seconds():
        return format_duration(timedelta(seconds=round(seconds)))
    return f"{seconds / 86400:.3g}d"
