"""SMS and WhatsApp through Twilio's Messages API, with the official SDK.

WhatsApp goes out as an approved template (`content_sid` and its variables) when the message
carries one, else as free text; the engine chose which (the 24-hour rule, nurture.whatsapp).
Twilio errors: 429 and 5xx are temporary (with `Retry-After`), as are timeouts and dropped
connections; a 4xx is permanent (21211 invalid number, 21610 unsubscribed, 63016 outside the
WhatsApp window, ...) and its code and message go to the log.
"""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from nurture.channels import OutgoingMessage, PermanentFailure, SendResult, TemporaryFailure
from nurture.channels.config import TwilioConfig
from nurture.errors import ConfigError

Kind = Literal["sms", "whatsapp"]


class _HttpClient(TwilioHttpClient):
    """Twilio's HTTP client, keeping each thread's last response (its Retry-After header)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.local = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self.local.response = None
        response = super().request(*args, **kwargs)
        self.local.response = response
        return response

    def retry_after(self) -> float | None:
        response = getattr(self.local, "response", None)
        value = (response.headers or {}).get("Retry-After") if response is not None else None
        try:
            return max(float(value), 0.0) if value is not None else None
        except ValueError:
            return None  # an HTTP date: the backoff decides


class TwilioChannel:
    def __init__(self, config: TwilioConfig, kind: Kind) -> None:
        if config.auth_token is None:
            raise ConfigError("twilio needs its auth token: set NURTURE_TWILIO__AUTH_TOKEN in .env")
        sender = config.whatsapp_from if kind == "whatsapp" else config.sms_from
        if not (sender or config.messaging_service_sid):
            wanted = "whatsapp_from" if kind == "whatsapp" else "sms_from"
            raise ConfigError(
                f"[twilio] has no {kind} sender: set {wanted} or messaging_service_sid"
            )
        self.config, self.kind, self.sender = config, kind, sender
        self.http = _HttpClient(config.timeout)
        token = config.auth_token.get_secret_value()
        self.client = Client(config.account_sid, token, http_client=self.http)
        self.client.api.base_url = config.api_url.rstrip("/")

    def send(self, message: OutgoingMessage) -> SendResult:
        with self.classified():
            created = self.client.messages.create(**self.parameters(message))
        return SendResult(created.sid)

    def check(self) -> str:
        """Fetch the account (no message sent); its name and status."""
        with self.classified():
            account = self.client.api.v2010.accounts(self.config.account_sid).fetch()
        if account.status != "active":
            raise PermanentFailure(f"Twilio account {account.friendly_name} is {account.status}")
        sender = self.sender or self.config.messaging_service_sid
        return f"account {account.friendly_name} ({account.status}), {self.kind} from {sender}"

    def parameters(self, message: OutgoingMessage) -> dict[str, Any]:
        """The Messages API fields: To, From or MessagingServiceSid, Body or ContentSid."""
        prefix = "whatsapp:" if self.kind == "whatsapp" else ""
        fields: dict[str, Any] = {"to": prefix + message.recipient}
        if self.sender:
            fields["from_"] = prefix + self.sender
        else:
            fields["messaging_service_sid"] = self.config.messaging_service_sid
        template = message.template
        if template is not None:
            fields["content_sid"] = template["content_sid"]
            fields["content_variables"] = json.dumps(template.get("variables") or {})
        else:
            fields["body"] = message.body
        return fields

    @contextmanager
    def classified(self) -> Iterator[None]:
        try:
            yield
        except TwilioRestException as error:
            raise classify(error.status, error.code, error.msg, self.http.retry_after()) from None
        except requests.Timeout as error:
            raise TemporaryFailure(f"Twilio: timed out ({error})") from None
        except (requests.RequestException, OSError, TwilioException) as error:
            raise TemporaryFailure(f"Twilio: {type(error).__name__}: {error}") from None


TEMPORARY_CODES = frozenset({20429, 14107})
"""Twilio codes that mean "too many requests, later" whatever the HTTP status."""
UNSUBSCRIBED = 21610
"""The recipient replied STOP to this sender: Twilio refuses every message until START."""


def classify(
    status: int, code: int | None, text: str, retry_after: float | None = None
) -> Exception:
    """A Twilio error response as a temporary or permanent failure."""
    detail = text.removeprefix("Unable to create record: ").removeprefix("Unable to fetch record: ")
    described = f"Twilio {code or status}: {detail}"
    if status == 429 or status >= 500 or code in TEMPORARY_CODES:
        return TemporaryFailure(described, retry_after=retry_after)
    return PermanentFailure(described, unsubscribed=code == UNSUBSCRIBED)
