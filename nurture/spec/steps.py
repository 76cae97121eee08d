"""A step of a sequence file as pydantic models: when it runs, what it does, how it retries."""

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
from nurture.spec.conditions import StepConditions
from nurture.spec.durations import PATTERN, count_of, format_duration
from nurture.spec.names import slugify
from nurture.spec.times import LONGEST_WAIT, TEN_YEARS, is_stored
from nurture.spec.variants import (
    Variant,
    check_variants,
    variants_field,
    with_control,
)

STEP_ID = r"^[a-z0-9][a-z0-9_-]*$"
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
