"""How each real channel is configured: the `[email]`, `[twilio]`, `[notifications]`,
`[unsubscribe]` and `[rate_limits]` tables of nurture.toml.

Secrets (SecretStr fields) come only from the environment or `.env`
(`NURTURE_EMAIL__PASSWORD`, `NURTURE_TWILIO__AUTH_TOKEN`, ...): nurture.toml is committed.
"""

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from nurture.channels.redact import shown

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_HOST = re.compile(
    r"(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?"
)
_SLACK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
_SLACK_PATH = re.compile(r"/(services|triggers|workflows)/T[A-Z0-9]+(/[A-Za-z0-9_-]+){2,3}/?")


def web_url(value: str) -> str:
    """An https URL (http for localhost) with a host; the ValueError never shows its path."""
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("the value has a space or a control character (a stray newline?)")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:  # a port that is not a number, a broken IPv6 address
        raise ValueError("the value is not a URL: its host or port cannot be read") from None
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError("the value is not a URL: it must start with https:// and a host")
    where = shown(value)
    if "@" in parts.netloc:
        raise ValueError(f"{where} carries a user name or password: they do not belong in a URL")
    host = parts.hostname or ""
    if not (_HOST.fullmatch(host) or _is_ip(host)):
        raise ValueError(f"{where}: {host!r} is not a host name")
    if parts.scheme == "http" and host not in LOCAL_HOSTS:
        raise ValueError(f"{where} must use https:// (http:// is only for localhost)")
    return value


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def slack_webhook(secret: SecretStr | None) -> SecretStr | None:
    """An incoming webhook URL: https://hooks.slack.com/services/T…/B…/… (any path elsewhere)."""
    if secret is None:
        return None
    value = web_url(secret.get_secret_value())
    parts = urlsplit(value)
    if parts.hostname in _SLACK_HOSTS and not _SLACK_PATH.fullmatch(parts.path):
        raise ValueError(
            f"{shown(value)} is not an incoming webhook URL: copy it whole from Slack "
            "(https://hooks.slack.com/services/T…/B…/…)"
        )
    if parts.path in ("", "/"):
        raise ValueError(f"{shown(value)} has no path: an incoming webhook URL has one")
    return secret


WebUrl = Annotated[str, AfterValidator(web_url)]


class ChannelConfig(BaseModel):
    # A value refused is not repeated in the error's text: it may be a secret.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


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
    connections: int = Field(
        8,
        ge=1,
        le=1000,
        description="Connections open to the relay at once: the emails in flight on the event "
        "loop, each connection reused for the next.",
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


class ImapConfig(ChannelConfig):
    """A mailbox leads' answers arrive in, read over IMAP: `[inbound_email.imap]`."""

    host: str = Field(min_length=1)
    port: int | None = Field(None, description="Default: 993 for tls, 143 for starttls and none.")
    security: Literal["tls", "starttls", "none"] = "tls"
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    folder: str = Field("INBOX", min_length=1, description="The folder of new answers.")
    poll: float = Field(60.0, ge=1, description="Seconds between the daemon's looks.")
    timeout: float = Field(30.0, gt=0)
    ca_file: Path | None = Field(None, description="CA bundle for a server with a private CA.")

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)

    @model_validator(mode="after")
    def _plain_only_here(self) -> "ImapConfig":
        if self.security == "none" and self.host not in LOCAL_HOSTS:
            raise ValueError(
                f"security = 'none' sends the IMAP password in the clear: only for localhost, "
                f"not {self.host!r} (use tls or starttls)"
            )
        return self


class TwilioConfig(ChannelConfig):
    """SMS and WhatsApp through Twilio's Messages API."""

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr | None = None
    sms_from: E164 | None = Field(None, description="The sending number (E.164).")
    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-fA-F]{32}$")
    whatsapp_from: E164 | None = Field(None, description="The WhatsApp sender (E.164).")
    api_url: WebUrl = Field("https://api.twilio.com", description="Only for proxies and tests.")
    timeout: float = Field(30.0, gt=0)
    concurrency: int = Field(
        500,
        ge=1,
        le=10_000,
        description="Messages in flight to Twilio at once, over as many kept-alive connections "
        "(at 200 ms an answer, 500 carry up to 2,500 messages a second; Twilio answers 429 "
        "when an account has more at once than it allows, and those are retried).",
    )
    inbound_funnel: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="The funnel a person who texts first arrives through: an SMS or WhatsApp "
        "message from a number no lead has makes a lead (enrolled by the usual matching). "
        "Unset: no lead is made, the coach is told of the message.",
    )

    @model_validator(mode="after")
    def _a_sender(self) -> "TwilioConfig":
        if not (self.sms_from or self.messaging_service_sid or self.whatsapp_from):
            raise ValueError("give sms_from, messaging_service_sid or whatsapp_from")
        return self


class NotificationsConfig(ChannelConfig):
    """Where send_notification steps go: a Slack incoming webhook, a JSON webhook, email."""

    slack_webhook_url: SecretStr | None = None
    webhook_url: WebUrl | None = None
    webhook_secret: SecretStr | None = None
    email_to: str | None = Field(None, description="Sent through [email].")
    timeout: float = Field(10.0, gt=0)
    alert_on_failure: bool = Field(
        True, description="Also notify when a provider refuses a lead's message for good."
    )
    replies: bool = Field(True, description="Tell the coach when a lead writes in.")
    urgent_replies: bool = Field(
        False, description="Replies are urgent: delivered outside working hours, with a mention."
    )
    slack_mention: str = Field(
        "<!channel>",
        pattern=r"^<(!channel|!here|!everyone|@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+)>$",
        description="Who an urgent notification mentions on Slack: <!channel>, <!here>, or a "
        "member <@U…>.",
    )
    dashboard_url: WebUrl | None = Field(
        None,
        description="Where the dashboard is served (https://nurture.example.com): "
        "notifications link to the lead's page under it. Default: [api] public_url.",
    )

    _slack_webhook = field_validator("slack_webhook_url")(slack_webhook)


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

    @property
    def rates(self) -> dict[str, float]:
        """`rate_limits` by any kind's name (the settings check the names; lookups take a str)."""
        return dict(self.rate_limits.items())
