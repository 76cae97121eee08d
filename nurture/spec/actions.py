"""The nine action types and the config each takes. Fields named in TEMPLATE_FIELDS are Jinja2 templates."""

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, model_validator

from nurture.spec.base import OneOrMany, SpecModel
from nurture.spec.durations import format_duration, parse_duration
from nurture.spec.times import check_wait
from nurture.spec.window import ClockTime

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(check_wait),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    Field(
        description="A duration such as '30m', '2h', '1d 4h', '1w', or minutes as a number; "
        "10 years at most."
    ),
]


class ActionType(StrEnum):
    SEND_WHATSAPP_MESSAGE = "send_whatsapp_message"
    SEND_EMAIL = "send_email"
    SEND_SMS = "send_sms"
    CREATE_TASK = "create_task"
    UPDATE_LEAD_SCORE = "update_lead_score"
    ADD_LEAD_TAG = "add_lead_tag"
    SCHEDULE_APPOINTMENT = "schedule_appointment"
    SEND_NOTIFICATION = "send_notification"
    WAIT = "wait"


MESSAGE_ACTIONS = frozenset(
    {ActionType.SEND_WHATSAPP_MESSAGE, ActionType.SEND_EMAIL, ActionType.SEND_SMS}
)


CONTENT_SID = r"^HX[0-9a-fA-F]{32}$"
"""An approved WhatsApp template's Twilio content SID."""


class WhatsAppTemplate(SpecModel):
    """An approved WhatsApp template: its Twilio content SID and the variables filled from the lead."""

    content_sid: str = Field(pattern=CONTENT_SID)
    variables: dict[str, str] = Field(default_factory=dict)


class WhatsAppConfig(SpecModel):
    message: str | None = Field(
        None, description="Free text (only delivered within 24h of the lead's last message)."
    )
    template: WhatsAppTemplate | None = None

    @model_validator(mode="after")
    def _something_to_send(self) -> Self:
        if self.message is None and self.template is None:
            raise ValueError("give a message, a template, or both")
        return self


class EmailConfig(SpecModel):
    subject: str = Field(min_length=1)
    body: str = Field(min_length=1, description="Plain-text body.")
    html: str | None = Field(
        None, description="HTML body (autoescaped); plain text only when absent."
    )
    reply_to: str | None = None


class SmsConfig(SpecModel):
    message: str = Field(min_length=1)


class TaskConfig(SpecModel):
    title: str = Field(min_length=1)
    description: str | None = None
    due_in: Duration | None = Field(None, description="Due this long after the step runs.")
    assignee: str | None = None
    priority: Literal["low", "normal", "high"] = "normal"


class ScoreConfig(SpecModel):
    """Set the score or add to it (negative to subtract); the result is clamped to 0-100."""

    set: int | None = Field(None, ge=0, le=100)
    add: int | None = Field(None, ge=-100, le=100)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.set is None) == (self.add is None):
            raise ValueError("give exactly one of 'set' or 'add'")
        return self


class TagConfig(SpecModel):
    tags: OneOrMany


Outcome = Literal["attended", "no_show", "cancelled"]
"""What became of a booked call: `nurture appointments done [--no-show]`, `cancel`, the page."""


class AppointmentConfig(SpecModel):
    """fixed: at a time the sequence sets; auto: the first free slot of the coach's
    `[availability]`; offer: the lead picks a slot on the page `{{ booking_link }}` opens."""

    title: str = Field(min_length=1)
    mode: Literal["fixed", "auto", "offer"] = "fixed"
    after: Duration = Field(
        timedelta(days=1),
        description="How long after the step runs (auto: the earliest slot it may book).",
    )
    at: ClockTime | None = Field(
        None, description="fixed: local time of day in the lead's time zone."
    )
    duration_minutes: int = Field(
        30, gt=0, le=24 * 60, description="fixed (auto and offer: the availability's slot)."
    )
    location: str | None = None
    notes: str | None = None
    stop_on: list[Outcome] = Field(
        default_factory=list, description="Outcomes that end the enrollment, e.g. [cancelled]."
    )
    converts_on: list[Outcome] = Field(
        default_factory=list,
        description="Outcomes that convert the lead (as `leads convert` does), e.g. [attended].",
    )

    @model_validator(mode="after")
    def _at_is_fixed(self) -> Self:
        if self.at is not None and self.mode != "fixed":
            raise ValueError(f"`at` sets a fixed time: mode {self.mode!r} picks a free slot")
        return self


class NotificationConfig(SpecModel):
    message: str = Field(min_length=1)
    channel: str | None = Field(
        None, description="Notification channel name; the project default when absent."
    )
    urgent: bool = False


class WaitConfig(SpecModel):
    """A wait does nothing but delay: its step's delay is the wait."""

    note: str | None = None


ACTION_CONFIGS: dict[ActionType, type[SpecModel]] = {
    ActionType.SEND_WHATSAPP_MESSAGE: WhatsAppConfig,
    ActionType.SEND_EMAIL: EmailConfig,
    ActionType.SEND_SMS: SmsConfig,
    ActionType.CREATE_TASK: TaskConfig,
    ActionType.UPDATE_LEAD_SCORE: ScoreConfig,
    ActionType.ADD_LEAD_TAG: TagConfig,
    ActionType.SCHEDULE_APPOINTMENT: AppointmentConfig,
    ActionType.SEND_NOTIFICATION: NotificationConfig,
    ActionType.WAIT: WaitConfig,
}

TEMPLATE_FIELDS = frozenset({"message", "subject", "body", "html", "title", "description", "notes"})
"""Config fields rendered as Jinja2 templates (WhatsApp template variables too)."""
