"""How each real channel is configured: the `[email]`, `[twilio]`, `[notifications]`,
`[unsubscribe]` and `[rate_limits]` tables of nurture.toml.

Secrets (SecretStr fields) come only from the environment or `.env`
(`NURTURE_EMAIL__PASSWORD`, `NURTURE_TWILIO__AUTH_TOKEN`, ...): nurture.toml is committed.
"""

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)


class ChannelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SmtpConfig(ChannelConfig):
    """Email over SMTP."""

    host: str = Field(min_length=1)
    port: int | None = Field(None, description="Default: 587 for starttls, 465 for tls, 25.")
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = Field(min_length=3)
    from_name: str | None = None
    reply_to: str | None = None
    timeout: float = Field(30.0, gt=0)
    ca_file: Path | None = Field(None, description="CA bundle for a relay with a private CA.")
    messages_per_connection: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Each sender keeps its connection open for this many messages (1: a new "
        "connection for every message).",
    )

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]

    @model_validator(mode="after")
    def _login_whole(self) -> "SmtpConfig":
        if self.password is not None and not self.username:
            raise ValueError(
                "a password is set (NURTURE_EMAIL__PASSWORD) but no username: SMTP logs in "
                "with both, so give [email] username too"
            )
        return self


def _e164(number: str) -> str:
    if not re.fullmatch(r"\+[1-9][0-9]{6,14}", number):
        raise ValueError(
            f"{number!r} is not a number in E.164: +, the country code and the number, no "
            "spaces (e.g. +15017122661)"
        )
    return number


E164 = Annotated[str, AfterValidator(_e164)]


class TwilioConfig(ChannelConfig):
    """SMS and WhatsApp through Twilio's Messages API."""

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr | None = None
    sms_from: E164 | None = Field(None, description="The sending number (E.164).")
    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-fA-F]{32}$")
    whatsapp_from: E164 | None = Field(None, description="The WhatsApp sender (E.164).")
    api_url: str = Field("https://api.twilio.com", description="Only for proxies and tests.")
    timeout: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _a_sender(self) -> "TwilioConfig":
        if not (self.sms_from or self.messaging_service_sid or self.whatsapp_from):
            raise ValueError("give sms_from, messaging_service_sid or whatsapp_from")
        return self


class NotificationsConfig(ChannelConfig):
    """Where send_notification steps go: a Slack incoming webhook, a JSON webhook, email."""

    slack_webhook_url: SecretStr | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    email_to: str | None = Field(None, description="Sent through [email].")
    timeout: float = Field(10.0, gt=0)
    alert_on_failure: bool = Field(
        True, description="Also notify when a provider refuses a lead's message for good."
    )


class UnsubscribeConfig(ChannelConfig):
    """The signed unsubscribe link of every email."""

    secret: SecretStr | None = Field(None, description="Signs unsubscribe tokens.")
    url: str | None = Field(
        None, description="A page that applies the token, e.g. https://x.com/unsubscribe/{token}."
    )
    mailto: str | None = Field(None, description="Where a mailed unsubscribe goes (default: from).")

    @field_validator("url")
    @classmethod
    def _has_token(cls, value: str | None) -> str | None:
        if value is not None and "{token}" not in value:
            raise ValueError("the url needs a {token} placeholder")
        return value


RateLimits = dict[
    Literal["whatsapp", "sms", "email", "notification"], Annotated[float, Field(gt=0)]
]
"""Messages per second for each kind of message, shared by every daemon on the store."""


class Providers(BaseModel):
    """Everything the live channels need, taken from the settings."""

    email: SmtpConfig | None = None
    twilio: TwilioConfig | None = None
    notifications: NotificationsConfig | None = None
    unsubscribe: UnsubscribeConfig = Field(default_factory=UnsubscribeConfig)
    rate_limits: RateLimits = Field(default_factory=dict)
