"""SMS and WhatsApp through Twilio's Messages API.

A message is one POST of the channel's own, the same request and the same reading of its answer
from a sender thread (`send`, requests) and on the event loop (`send_async`: a lean HTTP/1.1
client of kept-alive connections, nurture.channels.twilio_http; aiohttp when a proxy is set);
looking a message up (`settle`) and `check` use the official SDK.

WhatsApp goes out as an approved template (`content_sid` and its variables) when the message
carries one, else as free text; the engine chose which (the 24-hour rule, nurture.rules.whatsapp).

A send fails in one of three ways. Temporary (retried): nothing reached Twilio (connection
refused, a name that does not resolve, a connect timeout, a certificate refused) or Twilio
answered that it did not take the message (429 and 5xx, with `Retry-After`). Permanent: a 4xx
(21211 invalid number, 21610 unsubscribed, 63016 outside the WhatsApp window, ...), its code
and message logged.
Uncertain: the request went out and no answer came back (a read timeout, a connection dropped
or reset after the request was written): Twilio may have the message, so `settle` asks it.
"""

import asyncio
import base64
import json
import os
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import aiohttp
import requests
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH, select_proxy
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageInstance

from nurture.channels.config import TwilioConfig
from nurture.channels.protocol import (
    Closer,
    OutgoingMessage,
    PermanentFailure,
    SendResult,
    TemporaryFailure,
    UncertainSend,
)
from nurture.channels.twilio_answers import answered, classify, describe, page_error, unanswered
from nurture.channels.twilio_http import HttpError, Pool
from nurture.channels.webhook import seconds
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


FIELDS = {
    "to": "To",
    "from_": "From",
    "messaging_service_sid": "MessagingServiceSid",
    "body": "Body",
    "content_sid": "ContentSid",
    "content_variables": "ContentVariables",
}
"""The SDK's names of the Messages API fields (`parameters`) and Twilio's own (the form sent)."""
HEADERS = {"Accept": "application/json", "User-Agent": "nurture"}
FORM = "application/x-www-form-urlencoded"


def ca_bundle() -> str:
    """The CA certificates Twilio's certificate is checked against, read once: requests' own
    variables (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE), else SSL_CERT_FILE, else certifi's."""
    names = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
    return next((os.environ[n] for n in names if os.environ.get(n)), DEFAULT_CA_BUNDLE_PATH)


class _HttpClient(TwilioHttpClient):
    """Twilio's HTTP client, keeping each thread's last response (its Retry-After header).

    One pool of keep-alive connections sized for every sender, and the environment's proxy and
    CA settings read once, for Twilio's URL, instead of on every request.
    """

    def __init__(self, timeout: float, url: str, pool: int) -> None:
        super().__init__(timeout=timeout)
        self.local = threading.local()
        session = self.session
        for scheme in ("http://", "https://"):
            session.mount(scheme, HTTPAdapter(pool_connections=1, pool_maxsize=pool))
        settings = session.merge_environment_settings(url, {}, None, None, None)
        session.proxies, session.verify = settings["proxies"], ca_bundle()
        session.trust_env = False

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self.local.response = None
        response = super().request(*args, **kwargs)
        self.local.response = response
        return response

    def retry_after(self) -> float | None:
        response = getattr(self.local, "response", None)
        return seconds((response.headers or {}).get("Retry-After") if response else None)


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
        self.concurrency = config.concurrency
        self.http = _HttpClient(config.timeout, config.api_url, config.concurrency)
        token = config.auth_token.get_secret_value()
        self.client = Client(config.account_sid, token, http_client=self.http)
        base = config.api_url.rstrip("/")
        self.client.api.base_url = base
        self.messages_url = f"{base}/2010-04-01/Accounts/{config.account_sid}/Messages.json"
        self.auth = (config.account_sid, token)
        self.ssl = ssl.create_default_context(cafile=self.http.session.verify)
        self.proxy = select_proxy(base, self.http.session.proxies)
        self.path = urlsplit(self.messages_url).path
        self.web: aiohttp.ClientSession | None = None  # send_async's through a proxy
        self.pool: Pool | None = None  # send_async's, on the loop that made it
        self.web_loop: asyncio.AbstractEventLoop | None = None
        self.closer = Closer()
        self.in_flight = IN_FLIGHT

    def send(self, message: OutgoingMessage) -> SendResult:
        """Create the message with one POST (the same request and answer as `send_async`)."""
        with self.classified(sending=True):
            response = self.http.session.post(
                self.messages_url,
                data=self.form(message),
                auth=self.auth,
                headers=HEADERS,
                timeout=self.config.timeout,
            )
        return answered(response.status_code, response.content, response.headers)

    async def send_async(self, message: OutgoingMessage) -> SendResult:
        """`send` on the running event loop, over the channel's pool of kept-alive connections."""
        body = urlencode(self.form(message)).encode()
        if self.proxy:
            return await self._send_proxied(body)
        try:
            status, answer, headers = await self._pool().post(self.path, body)
        except (HttpError, OSError, ValueError) as error:
            raise unanswered(error, sending=True) from None
        return answered(status, answer, headers)

    def _pool(self) -> Pool:
        """The channel's connections, made on the running loop (again if the loop changed)."""
        loop = asyncio.get_running_loop()
        pool = self.pool
        if pool is not None and self.web_loop is loop and not pool.closed:
            return pool
        if pool is not None:
            with suppress(RuntimeError):  # its loop is gone: close its sockets without it
                pool.close()
        headers = HEADERS | {"Authorization": _basic(*self.auth), "Content-Type": FORM}
        self.pool = Pool(
            self.messages_url, self.ssl, self.concurrency, self.config.timeout, headers
        )
        self.web_loop = loop
        self.closer.track(self, loop, _closing(self.pool))
        return self.pool

    async def _send_proxied(self, body: bytes) -> SendResult:
        """send_async through the configured proxy (aiohttp speaks to proxies)."""
        try:
            async with self._session().post(
                self.messages_url, data=body, proxy=self.proxy
            ) as response:
                answer = await response.read()
        except (aiohttp.ClientError, OSError, ValueError) as error:
            raise unanswered(error, sending=True) from None
        return answered(response.status, answer, response.headers)

    def _session(self) -> aiohttp.ClientSession:
        """The channel's aiohttp session, made on the running loop (again if the loop changed)."""
        loop = asyncio.get_running_loop()
        session = self.web
        if session is not None and not session.closed and self.web_loop is loop:
            return session
        if session is not None and session.connector is not None:
            with suppress(RuntimeError):  # its loop is gone: close its sockets without it
                session.connector._close()
        timeout = self.config.timeout
        self.web = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency, ssl=self.ssl),
            headers=HEADERS | {"Authorization": _basic(*self.auth), "Content-Type": FORM},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
            trust_env=False,
        )
        self.web_loop = loop
        self.closer.track(self, loop, self.web.close)
        return self.web

    async def aclose(self) -> None:
        """Close send_async's connections (on the loop that opened them)."""
        session, self.web = self.web, None
        pool, self.pool = self.pool, None
        self.closer.release()
        if pool is not None:
            pool.close()
        if session is not None:
            await session.close()

    def form(self, message: OutgoingMessage) -> dict[str, str]:
        """The form a message request posts: `parameters` in Twilio's names."""
        return {FIELDS[name]: value for name, value in self.parameters(message).items()}

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
            if (refused := page_error(error)) is None:
                raise TemporaryFailure(f"Twilio: {describe(error)}") from None
            raise classify(*refused, retry_after=self.http.retry_after()) from None
        except (requests.RequestException, OSError, ValueError) as error:
            raise unanswered(error, sending) from None


def _closing(pool: Pool) -> Callable[[], Coroutine[Any, Any, None]]:
    async def close() -> None:
        pool.close()

    return close


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
