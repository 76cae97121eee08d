"""SMS and WhatsApp through Twilio's Messages API, with the official SDK.

WhatsApp goes out as an approved template (`content_sid` and its variables) when the message
carries one, else as free text; the engine chose which (the 24-hour rule, nurture.rules.whatsapp).

A send fails in one of three ways. Temporary (retried): nothing reached Twilio (connection
refused, a name that does not resolve, a connect timeout) or Twilio answered that it did not
take the message (429 and 5xx, with `Retry-After`). Permanent: a 4xx (21211 invalid number,
21610 unsubscribed, 63016 outside the WhatsApp window, ...), its code and message logged.
Uncertain: the request went out and no answer came back (a read timeout, a connection dropped
or reset after the request was written): Twilio may have the message, so `settle` asks it.
"""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import requests
from requests.adapters import HTTPAdapter
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageInstance
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from nurture.channels.config import TwilioConfig
from nurture.channels.protocol import (
    OutgoingMessage,
    PermanentFailure,
    SendResult,
    TemporaryFailure,
    UncertainSend,
)
from nurture.errors import ConfigError

Kind = Literal["sms", "whatsapp"]

LOOKUP = 200
"""Messages read to settle one send: the newest from our sender to the recipient. With that many
and no match, the lookup cannot prove the message is not there (it says so)."""
CLOCK_SKEW = timedelta(minutes=5)
"""Twilio's clock against ours: a message created this long before `sent_after` still counts."""
IN_FLIGHT = timedelta(minutes=2)
"""How long a request may still be on its way into Twilio's records after the client gave up:
before that, "not there" means "not yet", and settle asks to be asked again."""


POOL = 256
"""Connections kept open to Twilio: one per sender, up to this many (the SDK keeps 6 for HTTPS
and 10 for HTTP, so 100 senders opened a new connection, and a TLS handshake, for most sends)."""


class _HttpClient(TwilioHttpClient):
    """Twilio's HTTP client, keeping each thread's last response (its Retry-After header).

    One pool of keep-alive connections sized for every sender, and the environment's proxy and
    CA settings read once, for Twilio's URL, instead of on every request.
    """

    def __init__(self, timeout: float, url: str) -> None:
        super().__init__(timeout=timeout)
        self.local = threading.local()
        session = self.session
        for scheme in ("http://", "https://"):
            session.mount(scheme, HTTPAdapter(pool_connections=1, pool_maxsize=POOL))
        settings = session.merge_environment_settings(url, {}, None, None, None)
        session.proxies, session.verify = settings["proxies"], settings["verify"]
        session.trust_env = False

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
        self.http = _HttpClient(config.timeout, config.api_url)
        token = config.auth_token.get_secret_value()
        self.client = Client(config.account_sid, token, http_client=self.http)
        self.client.api.base_url = config.api_url.rstrip("/")
        self.in_flight = IN_FLIGHT

    def send(self, message: OutgoingMessage) -> SendResult:
        with self.classified(sending=True):
            created = self.client.messages.create(**self.parameters(message))
        return SendResult(created.sid)

    def settle(self, message: OutgoingMessage, sent_after: datetime) -> SendResult | None:
        """Twilio's record of `message` sent since `sent_after`; None when it provably has none."""
        fields = self.parameters(message)
        found = self._lookup(fields)
        sent_after = sent_after if sent_after.tzinfo else sent_after.replace(tzinfo=UTC)
        since = sent_after - CLOCK_SKEW
        ours = [m for m in found if self._ours(m, fields) and m.date_created >= since]
        if "body" in fields and (same := [m for m in ours if m.body == fields["body"]]):
            return SendResult(same[0].sid)
        if ours:
            what = "a template's text" if "content_sid" in fields else "their text"
            raise UncertainSend(
                f"Twilio has {len(ours)} other message(s) to {fields['to']} since "
                f"{since:%Y-%m-%d %H:%M} UTC and {what} does not tell which is this one"
            )
        if len(found) >= LOOKUP:
            raise UncertainSend(f"Twilio has more than {LOOKUP} messages to {fields['to']}")
        self._not_in_flight(sent_after)
        return None

    def _lookup(self, fields: dict[str, Any]) -> list[MessageInstance]:
        """The newest messages from our sender to the recipient (one bounded page)."""
        try:
            with self.classified(sending=False):
                return self.client.messages.list(
                    to=fields["to"],
                    from_=fields.get("from_", values.unset),
                    limit=LOOKUP,
                    page_size=LOOKUP,
                )
        except PermanentFailure as failure:  # e.g. a revoked token: asking again will not help
            raise UncertainSend(f"Twilio cannot be asked about the message: {failure}") from None

    def _ours(self, record: MessageInstance, fields: dict[str, Any]) -> bool:
        """An outgoing message from this channel's sender (or messaging service), dated."""
        if not (record.direction or "").startswith("outbound") or record.date_created is None:
            return False
        if "from_" in fields:
            return record.from_ == fields["from_"]
        return record.messaging_service_sid == fields["messaging_service_sid"]

    def _not_in_flight(self, sent_after: datetime) -> None:
        """Raise TemporaryFailure while the request may still be reaching Twilio's records."""
        wait = sent_after + self.in_flight - datetime.now(UTC)
        if wait > timedelta(0):
            raise TemporaryFailure(
                "Twilio has no record of the message yet; it may still be arriving",
                retry_after=wait.total_seconds(),
            )

    def check(self) -> str:
        """Fetch the account (no message sent); its name and status."""
        with self.classified(sending=False):
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
    def classified(self, sending: bool) -> Iterator[None]:
        """Twilio's answers and the network's errors as failures. `sending`: the request
        creates a message, so an error after it went out is uncertain; a read is just retried."""
        try:
            yield
        except TwilioRestException as error:
            raise classify(error.status, error.code, error.msg, self.http.retry_after()) from None
        except TwilioException as error:
            if (answered := _page_error(error)) is None:
                raise TemporaryFailure(f"Twilio: {describe(error)}") from None
            raise classify(*answered, retry_after=self.http.retry_after()) from None
        except (requests.RequestException, OSError, ValueError) as error:
            if never_sent(error):
                raise TemporaryFailure(f"Twilio: could not connect: {describe(error)}") from None
            if not sending:
                raise TemporaryFailure(f"Twilio: {describe(error)}") from None
            raise UncertainSend(
                f"Twilio: no answer after the request went out: {describe(error)}"
            ) from None


def _page_error(error: TwilioException) -> tuple[int, int | None, str] | None:
    """A list page Twilio refused (the SDK raises "Unable to fetch page" with the response):
    its status, code and message."""
    response = error.args[1] if len(error.args) == 2 else None
    if not isinstance(response, Response):
        return None
    try:
        body = json.loads(response.text)
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return response.status_code, body.get("code"), body.get("message") or response.text[:200]


def never_sent(error: BaseException) -> bool:
    """Whether the request provably never reached Twilio: the connection was never made (refused,
    a name that does not resolve, a connect timeout). Anything later may have reached it."""
    return isinstance(error, requests.ConnectTimeout) or any(
        isinstance(cause, (NewConnectionError, ConnectTimeoutError)) for cause in causes(error)
    )


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it wraps: requests wraps urllib3's MaxRetryError, which has a reason."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo and len(seen) < 10:
        current = todo.pop(0)
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        yield current
        wrapped = [a for a in current.args if isinstance(a, BaseException)]
        todo += [getattr(current, "reason", None), current.__cause__, current.__context__, *wrapped]


def describe(error: BaseException) -> str:
    """The innermost error in words: 'ConnectionRefusedError: [Errno 111] Connection refused'."""
    for kind, words in WORDS:
        if isinstance(error, kind):
            return words
    plain = [c for c in causes(error) if not type(c).__module__.startswith(WRAPPERS)]
    if not plain:  # a wrapper's text names the URL: its name is enough
        return type(error).__name__
    return f"{type(plain[-1]).__name__}: {plain[-1]}"


WORDS = (
    (requests.ConnectTimeout, "timed out"),
    (requests.Timeout, "timed out waiting for the answer"),
    (requests.exceptions.ChunkedEncodingError, "the answer was cut off"),
)
WRAPPERS = ("requests.", "urllib3.", "twilio.")
"""Modules whose errors wrap the one that says what happened (refused, reset, closed)."""


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
