"""Leads over HTTP: the funnel webhook (matched and enrolled at once), lookups, changes, events.

Inbound-message, opt-out and opt-in events go through nurture.leads.consent, as the CLI's do.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, AliasChoices, Field, StringConstraints, field_validator
from sqlmodel import Session

from nurture.api.auth import allows
from nurture.api.batching import FAILED, Pending
from nurture.api.deps import Context, Ctx
from nurture.api.errors import ERRORS
from nurture.leads import ingest
from nurture.leads import records as leads
from nurture.leads.arrivals import Arrival
from nurture.leads.fields import (
    FIELD_NAME_LENGTH,
    MAX_LENGTH,
    MOST_TAGS,
    PHONE_AS_GIVEN,
    TAG_LENGTH,
    plain_text,
)
from nurture.leads.records import LeadInput, find_lead, lead_details
from nurture.spec.base import SpecModel
from nurture.spec.window import TimeZoneName
from nurture.store.tables import Lead

router = APIRouter(prefix="/api/leads", tags=["leads"], responses=ERRORS)
LeadRef = Annotated[
    str,
    Path(
        description="The lead's id, external id or email.",
        openapi_examples={"by id": {"value": "1"}, "by external id": {"value": "crm-17"}},
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=200,
        description="Retries with the same key get the first answer back and change nothing.",
    ),
]


EXAMPLE = {
    "funnel": "website",
    "name": "Ana Ruiz",
    "email": "ana@example.com",
    "leadScore": 50,
    "leadSource": "Web Form",
    "leadStatus": "New",
    "leadTemperature": "Warm",
    "externalId": "crm-17",
}


# Text the store can keep: so many characters at most (nurture.leads.fields), no NUL, no lone
# surrogate; else a 422 naming the field. The length is checked first, so its error wins.
_PLAIN = AfterValidator(plain_text)
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LENGTH["name"]), _PLAIN]
Email = Annotated[str, StringConstraints(max_length=MAX_LENGTH["email"]), _PLAIN]
Phone = Annotated[str, StringConstraints(max_length=PHONE_AS_GIVEN), _PLAIN]
Source = Annotated[str, StringConstraints(max_length=MAX_LENGTH["source"]), _PLAIN]
Status = Annotated[str, StringConstraints(max_length=MAX_LENGTH["status"]), _PLAIN]
Temperature = Annotated[str, StringConstraints(max_length=MAX_LENGTH["temperature"]), _PLAIN]
Tag = Annotated[str, StringConstraints(max_length=TAG_LENGTH), _PLAIN]
ExternalId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_LENGTH["external_id"]),
    _PLAIN,
]
FunnelName = Annotated[str, StringConstraints(min_length=1, max_length=200), _PLAIN]
FieldName = Annotated[str, StringConstraints(min_length=1, max_length=FIELD_NAME_LENGTH), _PLAIN]
Channel = Annotated[str, StringConstraints(min_length=1, max_length=20), _PLAIN]


class LeadFields(SpecModel):
    """A lead's data; snake_case, camelCase or the seed's `leadScore`-style names."""

    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    source: Source | None = Field(None, validation_alias=AliasChoices("source", "leadSource"))
    status: Status | None = Field(None, validation_alias=AliasChoices("status", "leadStatus"))
    temperature: Temperature | None = Field(
        None, validation_alias=AliasChoices("temperature", "leadTemperature")
    )
    score: int | None = Field(
        None, ge=0, le=100, validation_alias=AliasChoices("score", "leadScore")
    )
    tags: list[Tag] | None = Field(None, max_length=MOST_TAGS)
    timezone: TimeZoneName | None = None
    fields: dict[str, Any] | None = Field(  # checked as the CLI's are (nurture.leads.fields)
        None, validation_alias=AliasChoices("fields", "customFields")
    )
    external_id: ExternalId | None = None

    def as_input(self) -> LeadInput:
        data = self.model_dump(exclude_none=True, exclude={"funnel"})
        return LeadInput(**{**data, "fields": data.get("fields", {})})


class NewLead(LeadFields):
    """A lead a funnel sends: the funnel and a name at least."""

    funnel: FunnelName = Field(description="The funnel's name or slug.", examples=["website"])
    name: Name


class Answer(SpecModel):
    """An answer's model: camelCase out, and the store's other columns left out."""

    model_config = SpecModel.model_config | {"extra": "ignore"}


class EnrollmentOut(Answer):
    id: int
    sequence: str | None
    version: int
    status: str
    step_id: str | None
    next_run_at: datetime | None
    attempts: int
    enrolled_at: datetime
    finished_at: datetime | None
    exit_reason: str | None


class EngagementOut(Answer):
    """An engagement event: a delivery, a read, a click, an open, a reply, a bounce, a conversion."""

    kind: str
    at: datetime
    sequence_id: int | None
    step_id: str | None
    enrollment_id: int | None
    execution_id: int | None
    link: str | None = Field(description="A click's target.")
    detail: dict[str, Any] | None


class ReplyOut(Answer):
    received_at: datetime
    channel: str
    text: str | None = Field(description="What the lead wrote.")
    stopped: list[str] = Field(description="The sequences this reply stopped (stop_on_reply).")


class LeadOut(Answer):
    id: int
    external_id: str | None
    name: str
    first_name: str
    email: str | None
    phone: str | None
    source: str | None
    status: str | None
    temperature: str | None
    score: int
    tags: list[str]
    timezone: str | None
    funnel: str | None
    fields: dict[str, Any]
    opted_out: list[str] = Field(description="The channels the lead opted out of.")
    last_inbound_at: datetime | None = Field(description="When the lead last wrote to us.")
    created_at: datetime
    updated_at: datetime
    converted_at: datetime | None
    keys: list[str] = Field(
        description="Every external id, email and phone the lead is known by (kind:value)."
    )
    replies: list[ReplyOut] = Field(description="What the lead wrote to us, oldest first.")
    enrollments: list[EnrollmentOut]
    engagement_score: float = Field(
        0.0, description="Recency and frequency of the lead's engagement events (docs: engagement)."
    )
    engagement: list[EngagementOut] = Field(
        default_factory=list, description="What the lead did with its messages, oldest first."
    )


class FirstStep(Answer):
    step_id: str
    due_at: datetime


class ClashOut(Answer):
    """A key of the lead that another lead holds: left out of it, not merged."""

    kind: str = Field(description="external_id, email or phone.")
    value: str
    lead_id: int = Field(description="The lead that holds it.")
    name: str


class Ingested(Answer):
    """What became of a lead a funnel pushed."""

    lead_id: int
    created: bool
    replayed: bool
    sequence: str | None = Field(description="The sequence it was enrolled in; null: none.")
    reason: str = Field(description="Why this sequence won, or why none did.")
    first_step: FirstStep | None
    clashes: list[ClashOut] = Field(
        default_factory=list,
        description="Its email, phone or external id that other leads hold: left out, never "
        "merged (`nurture leads merge`, if they are one person).",
    )


class LeadEvent(SpecModel):
    type: ingest.EventType = Field(
        description="convert; status/score/temperature (set to value); tag (add value); "
        "custom (sets the custom field `name` to value, or to the event's time); "
        "inbound (the lead wrote `value` on `channel`: opens WhatsApp's 24-hour window, "
        "STOP opts out, START back in); opt-out, opt-in (of `channel`)."
    )
    value: str | int | None = Field(
        None, description="The new value; inbound: the message text (not for convert)."
    )
    name: FieldName | None = Field(None, description="custom: field name.")
    channel: Channel | None = Field(
        None,
        description="inbound: whatsapp (default) or sms; opt-out/opt-in: sms, whatsapp, email, all.",
    )

    @field_validator("value")
    @classmethod
    def _storable(cls, value: str | int | None) -> str | int | None:
        """Its length is the field's it sets (nurture.leads.fields, a 422 naming that field)."""
        return plain_text(value) if isinstance(value, str) else value


def lead_out(session: Session, lead: Lead, ctx: Context) -> LeadOut:
    scoring = ctx.settings.engagement.scoring()
    return LeadOut.model_validate(lead_details(session, lead, datetime.now(UTC), scoring))


@router.post(
    "",
    dependencies=allows("ingest", "write"),
    response_model=Ingested,
    status_code=201,
    responses={200: {"model": Ingested, "description": "Known lead, or a replayed request."}},
)
async def add_lead(
    request: Request,
    body: Annotated[NewLead, Body(openapi_examples={"a web form lead": {"value": EXAMPLE}})],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The funnel webhook: create or update the lead, match and enroll it at once."""
    if (failed := request.scope.get(FAILED)) is not None:  # the lean path's batch: its error
        raise failed
    pending = Pending(Arrival(body.as_input(), body.funnel), idempotency_key)
    answer = await request.app.state.batcher.submit(pending)
    fresh = answer["created"] and not answer["replayed"]
    return JSONResponse(answer, status_code=201 if fresh else 200)


@router.get("/{id}", dependencies=allows("read"), response_model=LeadOut)
def get_lead(ctx: Ctx, id: LeadRef) -> LeadOut:
    """The lead and its enrollments."""
    with ctx.store.session() as session:
        return lead_out(session, find_lead(session, id), ctx)


@router.patch("/{id}", dependencies=allows("write"), response_model=LeadOut)
def update_lead(ctx: Ctx, id: LeadRef, body: LeadFields) -> LeadOut:
    """Change the lead's data (tags add, fields merge); a conversion status stops enrollments."""
    with ctx.store.session(immediate=True) as session:
        lead = leads.update_lead(session, id, body.as_input(), datetime.now(UTC), ctx.rules)
        return lead_out(session, lead, ctx)


@router.post("/{id}/events", dependencies=allows("ingest", "write"), response_model=LeadOut)
def lead_event(ctx: Ctx, id: LeadRef, body: LeadEvent) -> LeadOut:
    """Something happened to the lead: it converted, wrote in, opted out or in, changed, or custom."""
    event = ingest.LeadEvent(body.type, body.value, body.name, body.channel)
    with ctx.store.session(immediate=True) as session:
        lead = ingest.apply_event(session, id, event, datetime.now(UTC), ctx.rules)
        return lead_out(session, lead, ctx)
