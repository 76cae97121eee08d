"""What a step does to a lead: its templates rendered, its message built, its effects in the store.

Messages leave through a channel; every other action is an effect: a function that writes its
rows in the completion's transaction, given the id of the execution it belongs to.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, overload
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, select

from nurture.channels import OutgoingMessage, PermanentFailure
from nurture.channels.unsubscribe import PLACEHOLDER
from nurture.engine import booking as slots
from nurture.rules import whatsapp
from nurture.rules.booking import Booking
from nurture.spec.actions import ActionType, EmailConfig, NotificationConfig
from nurture.spec.sandbox import renderer
from nurture.spec.steps import AnyStep
from nurture.spec.templates import html_environment, template_environment
from nurture.store import queries
from nurture.store.tables import Execution, Notification, Task

Effect = Callable[[Connection, int], None]
"""Writes a step's effect, given its execution id."""

CHANNEL_OF: dict[str, str] = {
    ActionType.SEND_WHATSAPP_MESSAGE: "whatsapp",
    ActionType.SEND_SMS: "sms",
    ActionType.SEND_EMAIL: "email",
    ActionType.SEND_NOTIFICATION: "notification",
}
_ADDRESS = {"whatsapp": ("phone", "phone number"), "sms": ("phone", "phone number")}
_ADDRESS |= {"email": ("email", "email address")}


def lead_context(lead: Any, funnel: Any) -> dict[str, Any]:
    """The `lead` a template sees (of a lead row, and its funnel row or None)."""
    return {
        "name": lead.name,
        "first_name": lead.first_name,
        "email": lead.email,
        "phone": lead.phone,
        "source": lead.source,
        "status": lead.status,
        "temperature": lead.temperature,
        "score": lead.score,
        "last_name": lead.name.partition(" ")[2],
        "tags": list(lead.tags),
        "timezone": lead.timezone,
        "fields": dict(lead.fields),
        "created_at": lead.created_at,
        "funnel": funnel.name if funnel is not None else None,
    }


def named(row: Any) -> dict[str, Any] | None:
    """A funnel or sequence as a template sees it: name, slug, id."""
    return None if row is None else {"name": row.name, "slug": row.slug, "id": row.id}


def context(
    lead: Any,
    funnel: Any,
    sequence: Any,
    step: AnyStep,
    coach: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Everything a template may read (spec.templates.TOP_LEVEL), of a lead, its funnel (or
    None) and its sequence (or None): rows, or batch.LeadRow and batch.Named tuples."""
    return {
        "lead": lead_context(lead, funnel),
        "coach": coach,
        "funnel": named(funnel),
        "sequence": named(sequence),
        "step": {"id": step.id, "slug": step.id, "name": step.name},
        "unsubscribe_url": PLACEHOLDER,  # the email channel puts the lead's signed link here
        "now": now,
        "booking_link": NO_BOOKING,  # dispatch puts the enrollment's link here
        "appointment": None,  # and its appointment, for the steps timed from it
    }


def appointment_view(row: Any, zone: str) -> dict[str, Any]:
    """`{{ appointment }}`: the enrollment's call, its start in the lead's zone too."""
    local = row.starts_at.astimezone(ZoneInfo(zone)) if row.starts_at is not None else None
    return {
        "id": row.id,
        "title": row.title,
        "status": row.status,
        "starts_at": row.starts_at,
        "local": local,
        "when": f"{local:%A %d %B %Y, %H:%M} ({zone})" if local is not None else "",
        "duration_minutes": row.duration_minutes,
        "location": row.location,
    }


class _NoBookingLink:
    """`{{ booking_link }}` where booking is not configured: the render fails, saying why."""

    def __str__(self) -> str:
        raise ValueError(
            "booking_link needs [availability] in nurture.toml, [api] public_url and a secret"
        )


NO_BOOKING = _NoBookingLink()


RENDERS = frozenset(ActionType) - {
    ActionType.WAIT,
    ActionType.UPDATE_LEAD_SCORE,
    ActionType.ADD_LEAD_TAG,
}
"""The action types whose config holds templates: the others need no context."""


@lru_cache(maxsize=4096)
def _template(source: str, html: bool = False) -> Callable[[dict[str, Any]], str]:
    """The render of a template, compiled once per text (a batch renders the same few)."""
    return renderer(html_environment() if html else template_environment(), source)


@overload
def render(source: str, context: dict[str, Any], *, html: bool = False) -> str: ...
@overload
def render(source: None, context: dict[str, Any], *, html: bool = False) -> None: ...
@overload
def render(source: str | None, context: dict[str, Any], *, html: bool = False) -> str | None: ...
def render(source: str | None, context: dict[str, Any], *, html: bool = False) -> str | None:
    """A template rendered (HTML autoescaped); an error is a permanent failure."""
    if source is None:
        return None
    try:
        return _template(source, html)(context)
    # A template is the user's code: whatever it raises (a limit, a TypeError, even a
    # MemoryError) fails its own step, never the batch it is in.
    except Exception as error:
        raise PermanentFailure(f"template error: {error or type(error).__name__}") from None


def _naming(step: AnyStep, error: PermanentFailure) -> PermanentFailure:
    """A template's failure names its step (a batch log holds many)."""
    if not str(error).startswith("template error"):
        return error
    return PermanentFailure(f"step {step.id!r}: {error}")


def opted_out(lead: Row, channel: str) -> bool:
    """Whether the lead asked not to hear from us on this channel (or at all)."""
    said = {entry.casefold() for entry in lead.opted_out}
    return channel in said or "all" in said


def message(step: AnyStep, lead: Row, context: dict[str, Any], key: str) -> OutgoingMessage:
    """The step's message, rendered and addressed; PermanentFailure when it cannot be."""
    try:
        return _message(step, lead, context, key)
    except PermanentFailure as error:
        raise _naming(step, error) from None


def _message(step: AnyStep, lead: Row, context: dict[str, Any], key: str) -> OutgoingMessage:
    channel = CHANNEL_OF[step.action_type]
    config = step.action_config
    fields = {"lead_id": lead.id, "key": key, "channel": channel}
    if isinstance(config, NotificationConfig):
        coach = context["coach"]
        recipient = config.channel or coach.get("email") or coach.get("name") or "coach"
        body = render(config.message, context)
        return OutgoingMessage(recipient=recipient, body=body, urgent=config.urgent, **fields)
    attribute, what = _ADDRESS[channel]
    recipient = getattr(lead, attribute)
    if not recipient:
        raise PermanentFailure(f"no {what}")
    if isinstance(config, EmailConfig):
        return OutgoingMessage(
            recipient=recipient,
            subject=render(config.subject, context),
            body=render(config.body, context),
            html=render(config.html, context, html=True),
            reply_to=config.reply_to,
            **fields,
        )
    if channel != "whatsapp":  # an SMS: a text, no template
        return OutgoingMessage(recipient=recipient, body=_text(config, context), **fields)
    body, template = _text(config, context), _whatsapp(config, context)
    body, template = whatsapp.choose(body, template, lead.last_inbound_at, context["now"])
    return OutgoingMessage(recipient=recipient, body=body, template=template, **fields)


def _text(config: Any, context: dict[str, Any]) -> str:
    return render(getattr(config, "message", None), context) or ""


def _whatsapp(config: Any, context: dict[str, Any]) -> dict[str, Any] | None:
    template = getattr(config, "template", None)
    if template is None:
        return None
    variables = {name: render(value, context) for name, value in template.variables.items()}
    return {"content_sid": template.content_sid, "variables": variables}


def effect(
    step: AnyStep,
    lead: Row,
    context: dict[str, Any],
    now: datetime,
    zone: str,
    booking: Booking | None = None,
    elsewhere: list[Any] | None = None,
) -> Effect | None:
    """The store effect of a non-message step (rendered now), or None (wait, messages);
    `elsewhere`: the coach's busy times in their calendar, for an auto booking."""
    maker = _MAKERS.get(step.action_type)
    if maker is None:
        return None
    try:
        if step.action_type == ActionType.SCHEDULE_APPOINTMENT:
            config = step.action_config
            return _appointment(config, lead, context, now, zone, booking, elsewhere or [])
        return maker(step.action_config, lead, context, now, zone)
    except PermanentFailure as error:
        raise _naming(step, error) from None


def _rows(table: Any, row: dict[str, Any]) -> Effect:
    return lambda connection, execution_id: queries.insert_rows(
        connection, table, [row | {"execution_id": execution_id}]
    )


def _task(config: Any, lead: Row, context: dict[str, Any], now: datetime, zone: str) -> Effect:
    due = now + config.due_in if config.due_in is not None else None
    row = {
        "lead_id": lead.id,
        "title": render(config.title, context),
        "description": render(config.description, context),
        "assignee": config.assignee,
        "priority": config.priority,
        "due_at": due,
        "created_at": now,
    }
    return _rows(Task, row)


def _score(config: Any, lead: Row, context: dict[str, Any], now: datetime, zone: str) -> Effect:
    return lambda connection, _: queries.change_score(
        connection, lead.id, set_to=config.set, add=config.add, now=now
    )


def _tags(config: Any, lead: Row, context: dict[str, Any], now: datetime, zone: str) -> Effect:
    return lambda connection, _: queries.add_tags(connection, lead.id, list(config.tags), now)


def _appointment(
    config: Any,
    lead: Row,
    context: dict[str, Any],
    now: datetime,
    zone: str,
    booking: Booking | None = None,
    elsewhere: list[Any] | None = None,
) -> Effect:
    row = {
        "lead_id": lead.id,
        "title": render(config.title, context),
        "duration_minutes": config.duration_minutes,
        "location": config.location,
        "notes": render(config.notes, context),
    }
    if config.mode != "fixed" and booking is None:
        raise PermanentFailure(f"mode {config.mode!r} needs [availability] in nurture.toml")
    coach = booking.coach if booking is not None else "coach"

    def write(connection: Connection, execution_id: int) -> None:
        enrollment_id = connection.scalar(
            select(Execution.__table__.c.enrollment_id).where(
                Execution.__table__.c.id == execution_id
            )
        )
        full = row | {"execution_id": execution_id, "enrollment_id": enrollment_id}
        if config.mode == "auto" and booking is not None:
            slots.book_first(connection, booking, full, now, now + config.after, elsewhere or [])
        elif config.mode == "offer":
            slots.offer(connection, coach, full, now)
        else:
            starts = appointment_time(now, config.after, config.at, lead.timezone or zone)
            slots.book_fixed(connection, coach, full | {"starts_at": starts}, now)

    return write


def appointment_time(now: datetime, after: Any, at: Any, zone: str) -> datetime:
    """`after` from now; with `at`, that day at that local time in the lead's zone."""
    starts = now + after
    if at is None:
        return starts
    local = starts.astimezone(ZoneInfo(zone))
    return local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0).astimezone(UTC)


def _notification(
    config: Any, lead: Row, context: dict[str, Any], now: datetime, zone: str
) -> Effect:
    """The coach's copy of a notification the step sends now."""
    return _rows(Notification, _note_row(config, lead, context, now) | {"delivered_at": now})


def held_notification(
    step: AnyStep, lead: Row, context: dict[str, Any], now: datetime, until: datetime
) -> Effect:
    """A notification step outside the coach's working hours: its note waits in the store, for
    the daemon to deliver at `until` (nurture.engine.notes)."""
    try:
        row = _note_row(step.action_config, lead, context, now)
    except PermanentFailure as error:
        raise _naming(step, error) from None
    return _rows(Notification, row | {"status": "pending", "deliver_at": until})


def _note_row(config: Any, lead: Row, context: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "lead_id": lead.id,
        "message": render(config.message, context),
        "channel": config.channel,
        "urgent": config.urgent,
        "kind": "step",
        "status": "sent",
        "attempts": 0,
        "created_at": now,
    }


_MAKERS: dict[str, Callable[[Any, Row, dict[str, Any], datetime, str], Effect]] = {
    ActionType.CREATE_TASK: _task,
    ActionType.UPDATE_LEAD_SCORE: _score,
    ActionType.ADD_LEAD_TAG: _tags,
    ActionType.SCHEDULE_APPOINTMENT: _appointment,  # effect() passes it the booking
    ActionType.SEND_NOTIFICATION: _notification,
}
