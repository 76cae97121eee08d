"""The sections of nurture.toml other than the top-level keys: `[coach]`, `[leads]`, `[api]`,
`[engagement]`, `[inbound_email]`, `[caps]` and `[experiments]`, and the checks of their values."""

from datetime import timedelta
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator

from nurture.channels.config import ImapConfig
from nurture.rules.caps import Caps, parse_caps
from nurture.rules.engagement import WEIGHTS, Scoring
from nurture.spec.actions import Duration
from nurture.spec.diagnostics import did_you_mean
from nurture.spec.durations import parse_duration
from nurture.spec.window import SendWindow


class CoachSettings(BaseModel):
    """Who the leads hear from; templates read these as `{{ coach.name }}` and so on."""

    model_config = ConfigDict(extra="allow")

    name: str = "Your Coach"
    business: str = ""
    email: str = ""
    phone: str = ""
    website: str = ""
    booking_url: str = ""
    working_hours: SendWindow | None = Field(
        None,
        description="When the coach hears of replies and non-urgent send_notification steps "
        "(days, start, end, timezone: the project's when not given, holidays); outside them "
        "notifications wait in the store for the next working moment. Unset: at once.",
    )


IdentityKind = Literal["external_id", "email", "phone"]


def _distinct(kinds: list[IdentityKind]) -> list[IdentityKind]:
    if len(set(kinds)) != len(kinds):
        raise ValueError("name each of external_id, email, phone at most once")
    return kinds


class LeadsSettings(BaseModel):
    """How leads are told apart: `[leads]` in nurture.toml."""

    model_config = ConfigDict(extra="forbid")

    identity: Annotated[list[IdentityKind], AfterValidator(_distinct)] = Field(
        default_factory=lambda: list(get_args(IdentityKind)),
        min_length=1,
        description="The keys that make a lead arriving one already stored (any of them "
        "matches), in order: when two name different leads, the first wins and the other "
        "is reported, never merged.",
    )


class ApiSettings(BaseModel):
    """`nurture serve`: the HTTP API."""

    model_config = ConfigDict(extra="forbid")

    sequences: Literal["read-only", "read-write"] = Field(
        "read-only",
        description="read-only: sequence writes answer 409 (git is the source of truth).",
    )
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Larger request bodies are refused with 413."
    )
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Where the world reaches `nurture serve` (https://nurture.example.com): "
        "emails then link to its /u/{token} page to unsubscribe.",
    )

    def unsubscribe_url(self) -> str | None:
        """The unsubscribe page `nurture serve` answers at, when its public URL is known."""
        return f"{self.public_url.rstrip('/')}/u/{{token}}" if self.public_url else None


class EngagementSettings(BaseModel):
    """Tracked links, the open pixel and the engagement score (docs/guides/engagement.md)."""

    model_config = ConfigDict(extra="forbid")

    open_pixel: bool = Field(
        False,
        description="Add a 1x1 image to HTML emails that counts opens. Off by default: mail "
        "clients that fetch images ahead (Apple Mail Privacy Protection) make opens overcount.",
    )
    secret: SecretStr | None = Field(
        None, description="Signs link tokens (default: NURTURE_UNSUBSCRIBE__SECRET)."
    )
    half_life: Duration = Field(
        timedelta(days=14), description="An event counts half as much after this long."
    )
    weights: dict[str, float] = Field(
        default_factory=lambda: dict(WEIGHTS),
        description="What each kind of event adds to the engagement score.",
    )
    scanner_seconds: float = Field(
        2.0,
        ge=0,
        description="A click this soon after the message went out is a link scanner's, not the lead's.",
    )

    @field_validator("weights")
    @classmethod
    def _known_kinds(cls, weights: dict[str, float]) -> dict[str, float]:
        for kind in weights:
            if kind not in WEIGHTS:
                raise ValueError(f"unknown event kind {kind!r}{did_you_mean(kind, WEIGHTS)}")
        return dict(WEIGHTS) | weights

    def scoring(self) -> Scoring:
        return Scoring(self.weights, self.half_life)


def _caps(text: str | None) -> str | None:
    if text is not None:
        parse_caps(text)
    return text


def _gap(text: str | None) -> str | None:
    if text is not None:
        parse_duration(text)
    return text


CapText = Annotated[str | None, AfterValidator(_caps)]


class InboundEmailSettings(BaseModel):
    """Leads' answers by email: `[inbound_email]` (docs/guides/notifications.md)."""

    model_config = ConfigDict(extra="forbid")

    secret: SecretStr | None = Field(
        None,
        description="The token POST /webhooks/email wants (X-Nurture-Token, the password of "
        "HTTP basic auth, or ?token=): NURTURE_INBOUND_EMAIL__SECRET, 16 characters or more. "
        "Unset: the webhook answers 503.",
    )

    imap: ImapConfig | None = Field(
        None,
        description="A mailbox `nurture run` reads answers from (its password: "
        "NURTURE_INBOUND_EMAIL__IMAP__PASSWORD).",
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < 16:  # never shown back
            raise ValueError("too short to guess hard: give 16 characters or more")
        return secret


class CapsSettings(BaseModel):
    """[caps]: how many messages a lead gets, across all sequences (rolling windows)."""

    model_config = ConfigDict(extra="forbid")

    messages: CapText = Field(
        None, description="Every message (SMS, WhatsApp, email), e.g. '2/day, 5/week'."
    )
    sms: CapText = Field(None, description="SMS messages, e.g. '1/day'.")
    whatsapp: CapText = Field(None, description="WhatsApp messages, e.g. '1/day'.")
    email: CapText = Field(None, description="Emails, e.g. '3/week'.")
    min_gap: Annotated[str | None, AfterValidator(_gap)] = Field(
        None, description="The quiet time after any message before the next, e.g. '4h'."
    )

    def rules(self) -> Caps:
        """The caps the engine keeps (empty: none, and the cap check costs nothing)."""
        return Caps.of(
            self.messages, self.min_gap, sms=self.sms, whatsapp=self.whatsapp, email=self.email
        )


class ExperimentSettings(BaseModel):
    """`[experiments]`: how `nurture stats --by variant` judges an A/B test."""

    model_config = ConfigDict(extra="forbid")

    min_sample: int = Field(
        100, ge=1, description="Leads each variant needs before a winner may be named."
    )
