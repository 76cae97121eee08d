"""A sequence file as pydantic models: identity, triggers, settings, ordered steps, test cases."""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from nurture.spec import actions as a
from nurture.spec.base import SpecModel, located_error
from nurture.spec.cases import TestCase
from nurture.spec.categories import Category
from nurture.spec.conditions import ENGAGEMENT_CONDITIONS, StepConditions, TriggerConditions
from nurture.spec.diagnostics import did_you_mean
from nurture.spec.durations import PATTERN, count_of, format_duration
from nurture.spec.events import ENGAGEMENT_EVENTS, parse_event
from nurture.spec.names import slugify
from nurture.spec.times import LONGEST_WAIT, TEN_YEARS, is_stored
from nurture.spec.variants import (
    Variant,
    check_split,
    check_variants,
    variant_problem,
    variants_field,
    with_control,
)
from nurture.spec.window import SendWindow

ReEntry = Literal["never", "after_exit", "always"]
FailurePolicy = Literal["continue", "stop"]
STEP_ID = r"^[a-z0-9][a-z0-9_-]*$"
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
DELAY_FIELDS = ("delay_days", "delay_hours", "delay_minutes")
RETRY_FIELDS = ("max_retries", "retry_backoff", "retry_delay")


def _most(unit: str) -> int:
    """The longest delay in `unit`s (days, hours, minutes): ten years of them."""
    return LONGEST_WAIT // timedelta(**{unit: 1})


def _within(unit: str) -> Callable[[int], int]:
    """A validator of a step's delay in `unit`s: at most ten years of them."""
    most = _most(unit)

    def within(amount: int) -> int:
        if amount > most:
            raise ValueError(f"{amount:,} {unit} is more than {TEN_YEARS}")
        return amount

    return within


CountOrDuration = Annotated[int, Field(ge=0)] | Annotated[str, Field(pattern=PATTERN)]
"""How a delay in one unit is written: `delay_hours: 2` or `delay_hours: 2h`."""


def _counted(unit: str) -> Callable[[object], object]:
    """A step's delay in `unit`s: a count of them, or a duration (`2h`) that is a whole number of them."""
    return lambda value: count_of(unit, value)


Days = Annotated[
    int,
    Field(ge=0),
    BeforeValidator(_counted("days"), json_schema_input_type=CountOrDuration),
    Field(json_schema_extra={"maximum": _most("days")}),
    AfterValidator(_within("days")),
]
Hours = Annotated[
    int,
    Field(ge=0),
    BeforeValidator(_counted("hours"), json_schema_input_type=CountOrDuration),
    Field(json_schema_extra={"maximum": _most("hours")}),
    AfterValidator(_within("hours")),
]
Minutes = Annotated[
    int,
    Field(ge=0),
    BeforeValidator(_counted("minutes"), json_schema_input_type=CountOrDuration),
    Field(json_schema_extra={"maximum": _most("minutes")}),
    AfterValidator(_within("minutes")),
]


class StepBase(SpecModel):
    """What every step has; the action type and its config come from the subclass."""

    id: str | None = Field(
        None,
        pattern=STEP_ID,
        max_length=100,
        description="Stable identity across versions; defaults to the name's slug.",
    )
    name: str = Field(min_length=1, max_length=200)
    step_number: int | None = Field(
        None, ge=0, description="Accepted from the seed system; order is list order."
    )
    description: str | None = None
    delay_days: Days = 0
    delay_hours: Hours = 0
    delay_minutes: Minutes = 0
    delay_duration: a.Duration | None = Field(
        None,
        alias="delay",
        exclude=True,
        description="The whole delay in one ('1d 4h'), instead of delay_days/hours/minutes.",
    )
    conditions: StepConditions | None = None
    active: bool = True
    stop: bool = Field(
        False,
        description="End the enrollment after this step runs (with conditions: stop only when "
        "they hold; a skipped step never stops).",
    )
    relative_to: Literal["appointment"] | None = Field(
        None,
        description="appointment: the delay counts from the lead's booked appointment "
        "(`delay: -1d` before it, `+2h` after), and moves with it.",
    )
    before: bool = Field(
        False, description="With relative_to: the delay counts back (what `delay: -1d` sets)."
    )

    @model_validator(mode="before")
    @classmethod
    def _signed_delay(cls, data: Any) -> Any:
        """`delay: -1d` / `+2h` beside `relative_to: appointment`: before or after it."""
        if not isinstance(data, dict) or not isinstance(data.get("delay"), str):
            return data
        delay = data["delay"].strip()
        if delay[:1] not in ("-", "+"):
            return data
        if data.get("relative_to", data.get("relativeTo")) != "appointment":
            raise located_error(
                ("delay",),
                f"{delay!r}: a signed delay counts from an appointment; add "
                "`relative_to: appointment`",
            )
        return data | {"delay": delay[1:].strip(), "before": delay[0] == "-"}

    @model_validator(mode="before")
    @classmethod
    def _control_config(cls, data: Any, info: ValidationInfo) -> Any:
        return with_control(cls, data, info)

    @model_validator(mode="after")
    def _variants_differ(self) -> Self:
        check_variants(getattr(self, "variants", None))
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler):
        """A step with variants is dumped as it is written: its config is the control's. (No
        return annotation: pydantic would take `dict` for the step's schema, and the API's
        steps, a union by action type, would match every member of it.)"""
        data: dict[str, Any] = handler(self)
        if getattr(self, "variants", None):
            data.pop("action_config", None)
        return data

    @model_validator(mode="after")
    def _default_id(self) -> Self:
        if self.id is None:
            self.id = slugify(self.name) or "step"
        return self

    @model_validator(mode="after")
    def _one_delay(self) -> Self:
        """`delay: 1d 4h` is `delay_days: 1, delay_hours: 4`: the definition keeps one form."""
        if self.delay_duration is None:
            return self
        given = [name for name in DELAY_FIELDS if name in self.model_fields_set]
        if given:
            raise located_error(("delay",), f"give `delay` or {', '.join(given)}, not both")
        minutes, seconds = divmod(int(self.delay_duration.total_seconds()), 60)
        if seconds:
            raise located_error(("delay",), "a step's delay counts in whole minutes")
        days, minutes = divmod(minutes, 24 * 60)
        self.delay_days, (self.delay_hours, self.delay_minutes) = days, divmod(minutes, 60)
        return self

    @model_validator(mode="after")
    def _delay_within_ten_years(self, info: ValidationInfo) -> Self:
        if self.delay > LONGEST_WAIT and not is_stored(info):
            last = [name for name in DELAY_FIELDS if getattr(self, name)][-1]
            raise located_error(
                (last,),
                f"the delay adds up to {format_duration(self.delay)}, more than {TEN_YEARS}",
            )
        return self

    @property
    def key(self) -> str:
        """The step's id: after validation always set (`_default_id`), whatever mypy knows."""
        return self.id or slugify(self.name) or "step"

    @property
    def delay(self) -> timedelta:
        """Time from the previous step (the first step: from enrollment)."""
        return timedelta(days=self.delay_days, hours=self.delay_hours, minutes=self.delay_minutes)

    @property
    def offset(self) -> timedelta:
        """With `relative_to: appointment`: from the appointment's start (negative: before)."""
        return -self.delay if self.before else self.delay


class WhatsAppStep(StepBase):
    action_type: Literal[a.ActionType.SEND_WHATSAPP_MESSAGE]
    action_config: a.WhatsAppConfig
    variants: list[Variant[a.WhatsAppConfig]] | None = variants_field()


class EmailStep(StepBase):
    action_type: Literal[a.ActionType.SEND_EMAIL]
    action_config: a.EmailConfig
    variants: list[Variant[a.EmailConfig]] | None = variants_field()


class SmsStep(StepBase):
    action_type: Literal[a.ActionType.SEND_SMS]
    action_config: a.SmsConfig
    variants: list[Variant[a.SmsConfig]] | None = variants_field()


class TaskStep(StepBase):
    action_type: Literal[a.ActionType.CREATE_TASK]
    action_config: a.TaskConfig
    variants: list[Variant[a.TaskConfig]] | None = variants_field()


class ScoreStep(StepBase):
    action_type: Literal[a.ActionType.UPDATE_LEAD_SCORE]
    action_config: a.ScoreConfig
    variants: list[Variant[a.ScoreConfig]] | None = variants_field()


class TagStep(StepBase):
    action_type: Literal[a.ActionType.ADD_LEAD_TAG]
    action_config: a.TagConfig
    variants: list[Variant[a.TagConfig]] | None = variants_field()


class AppointmentStep(StepBase):
    action_type: Literal[a.ActionType.SCHEDULE_APPOINTMENT]
    action_config: a.AppointmentConfig
    variants: list[Variant[a.AppointmentConfig]] | None = variants_field()


class NotificationStep(StepBase):
    action_type: Literal[a.ActionType.SEND_NOTIFICATION]
    action_config: a.NotificationConfig
    variants: list[Variant[a.NotificationConfig]] | None = variants_field()


class WaitFor(SpecModel):
    """Wait for the lead to do something, at most `timeout` (after the step's delay)."""

    event: Literal["reply", "click", "convert"]
    timeout: a.Duration


class WaitStep(StepBase):
    action_type: Literal[a.ActionType.WAIT]
    action_config: a.WaitConfig = Field(default_factory=a.WaitConfig)
    wait_for: WaitFor | None = Field(
        None,
        description="End the wait early when the lead replies, clicks or converts; the next "
        "steps' conditions (replied, clicked) see whether it came.",
    )


STEP_CLASSES: dict[a.ActionType, type[StepBase]] = {
    a.ActionType.SEND_WHATSAPP_MESSAGE: WhatsAppStep,
    a.ActionType.SEND_EMAIL: EmailStep,
    a.ActionType.SEND_SMS: SmsStep,
    a.ActionType.CREATE_TASK: TaskStep,
    a.ActionType.UPDATE_LEAD_SCORE: ScoreStep,
    a.ActionType.ADD_LEAD_TAG: TagStep,
    a.ActionType.SCHEDULE_APPOINTMENT: AppointmentStep,
    a.ActionType.SEND_NOTIFICATION: NotificationStep,
    a.ActionType.WAIT: WaitStep,
}


def _action_type(value: Any) -> str | None:
    if isinstance(value, dict):
        found = value.get("action_type", value.get("actionType"))
        return found if isinstance(found, str) else None
    return getattr(value, "action_type", None)


Step = Annotated[
    Annotated[WhatsAppStep, Tag("send_whatsapp_message")]
    | Annotated[EmailStep, Tag("send_email")]
    | Annotated[SmsStep, Tag("send_sms")]
    | Annotated[TaskStep, Tag("create_task")]
    | Annotated[ScoreStep, Tag("update_lead_score")]
    | Annotated[TagStep, Tag("add_lead_tag")]
    | Annotated[AppointmentStep, Tag("schedule_appointment")]
    | Annotated[NotificationStep, Tag("send_notification")]
    | Annotated[WaitStep, Tag("wait")],
    Discriminator(_action_type),
]
AnyStep = (
    WhatsAppStep
    | EmailStep
    | SmsStep
    | TaskStep
    | ScoreStep
    | TagStep
    | AppointmentStep
    | NotificationStep
    | WaitStep
)
"""`Step` as a plain union, for annotating code that takes a validated step."""


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
