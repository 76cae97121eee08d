"""What Twilio's answer to a request means, or its silence: a message's sid, or a temporary,
permanent or uncertain failure (the rules are in nurture.channels.twilio's docstring). The
same reading serves a request sent with requests, with aiohttp, by nurture.channels.twilio_http
or by the SDK."""

import http.client
import json
import ssl
from contextlib import suppress
from http import HTTPStatus
from typing import Any

import aiohttp
import requests
from twilio.base.exceptions import TwilioException
from twilio.http.response import Response
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from nurture.channels import twilio_http
from nurture.channels.network import causes, os_words
from nurture.channels.protocol import (
    PermanentFailure,
    SendResult,
    TemporaryFailure,
    UncertainSend,
)
from nurture.channels.webhook import seconds
from nurture.errors import ChannelError


def answered(status: int, body: bytes, headers: Any) -> SendResult:
    """Twilio's answer to a message request: the message's sid, else the failure it says."""
    text = body.decode(errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    data = data if isinstance(data, dict) else {}
    if 200 <= status < 300:
        if not isinstance(sid := data.get("sid"), str) or not sid:
            raise UncertainSend(
                f"Twilio answered {status} without the message's sid: {text[:80]!r}"
            )
        return SendResult(sid)
    code = data.get("code") if isinstance(data.get("code"), int) else None
    detail = str(data.get("message") or _phrase(status))
    raise classify(status, code, detail, seconds(headers.get("Retry-After")))


def _phrase(status: int) -> str:
    with suppress(ValueError):
        return HTTPStatus(status).phrase
    return "no explanation"


def unanswered(error: BaseException, sending: bool) -> ChannelError:
    """A request that got no answer: temporary when it never went out (or only read), else
    uncertain (Twilio may have taken the message)."""
    if never_sent(error):
        return TemporaryFailure(f"Twilio: could not connect: {describe(error)}")
    if not sending:
        return TemporaryFailure(f"Twilio: {describe(error)}")
    return UncertainSend(f"Twilio: no answer after the request went out: {describe(error)}")


def page_error(error: TwilioException) -> tuple[int, int | None, str] | None:
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


NEVER_SENT = (
    requests.ConnectTimeout,
    NewConnectionError,
    ConnectTimeoutError,
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    ssl.SSLCertVerificationError,
    twilio_http.ConnectFailed,
    twilio_http.ConnectTimeout,
)
"""Errors of a connection never made: refused, a name that does not resolve, a connect
timeout, a certificate refused in the handshake (no request was written)."""


def never_sent(error: BaseException) -> bool:
    """Whether the request provably never reached Twilio (anything later may have reached it)."""
    return any(isinstance(cause, NEVER_SENT) for cause in causes(error))


def describe(error: BaseException) -> str:
    """The innermost error in words: 'ConnectionRefusedError: [Errno 111] Connection refused'."""
    chain = list(causes(error))
    for cause in chain:
        for kind, words in WORDS:
            if isinstance(cause, kind):
                return words
    plain = [c for c in chain if not type(c).__module__.startswith(WRAPPERS)]
    numbered = [c for c in chain if isinstance(c, OSError) and c.errno]
    if plain or numbered:  # a wrapper's text names the URL: the error it wraps says enough
        return os_words((plain or numbered)[-1])
    return type(error).__name__


WORDS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (
        (requests.ConnectTimeout, aiohttp.ConnectionTimeoutError, twilio_http.ConnectTimeout),
        "timed out",
    ),
    (
        (requests.Timeout, aiohttp.SocketTimeoutError, twilio_http.ReadTimeout),
        "timed out waiting for the answer",
    ),
    (
        (requests.exceptions.ChunkedEncodingError, aiohttp.ClientPayloadError, twilio_http.CutOff),
        "the answer was cut off",
    ),
    (
        (
            http.client.RemoteDisconnected,
            aiohttp.ServerDisconnectedError,
            twilio_http.Disconnected,
        ),
        "the connection closed without an answer",
    ),
    (
        (http.client.HTTPException, aiohttp.ClientResponseError, twilio_http.NotHttp),
        "the answer was not HTTP",
    ),
)
WRAPPERS = ("requests.", "urllib3.", "twilio.", "aiohttp.", "nurture.channels.twilio_http")
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
