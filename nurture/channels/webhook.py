"""Notifications as a signed JSON POST to the coach's own endpoint.

Headers: `X-Nurture-Timestamp` (unix seconds), `X-Nurture-Signature: sha256=HEX` where HEX is
the HMAC-SHA256 of `TIMESTAMP.BODY` under the webhook secret, and `X-Nurture-Key` (the
execution key: a receiver drops a repeat). 429 and 5xx are temporary, other 4xx permanent.
"""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from http.client import InvalidURL
from typing import Any

from nurture.channels.config import NotificationsConfig
from nurture.channels.protocol import (
    OutgoingMessage,
    PermanentFailure,
    SendResult,
    TemporaryFailure,
)
from nurture.channels.redact import MalformedUrl, redact, shown, transport_failure, url_secrets

USER_AGENT = "nurture-webhook/1"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Nurture-Signature value a receiver recomputes to trust a request."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def http_failure(service: str, status: int, text: str, retry_after: str | None) -> Exception:
    """An HTTP error status as a temporary (429, 5xx) or permanent (other 4xx) failure."""
    described = f"{service} HTTP {status}: {text.strip()[:300]}".rstrip(": ")
    if status == 429 or status >= 500:
        return TemporaryFailure(described, retry_after=seconds(retry_after))
    return PermanentFailure(described)


def seconds(retry_after: str | None) -> float | None:
    """A Retry-After header in seconds (an HTTP date is left to the backoff)."""
    try:
        return max(float(retry_after), 0.0) if retry_after else None
    except ValueError:
        return None


class WebhookChannel:
    def __init__(self, config: NotificationsConfig) -> None:
        self.url = config.webhook_url or ""
        self.secret = config.webhook_secret.get_secret_value() if config.webhook_secret else None
        self.secrets = [*url_secrets(self.url), self.secret or ""]
        self.timeout = config.timeout

    def send(self, message: OutgoingMessage) -> SendResult:
        payload = {
            "event": "notification",
            "key": message.key,
            "lead_id": message.lead_id,
            "execution_id": message.execution_id,
            "to": message.recipient,
            "subject": message.subject,
            "message": message.body,
            "urgent": message.urgent,
            "link": message.link,
        }
        status, _ = self.post(payload)
        return SendResult(f"webhook-{message.key}-{status}")

    def post(self, payload: dict[str, Any], key: str | None = None) -> tuple[int, str]:
        body = json.dumps(payload, default=str).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        headers["X-Nurture-Key"] = key or str(payload.get("key") or "")
        if self.secret:
            timestamp = str(int(time.time()))
            headers["X-Nurture-Timestamp"] = timestamp
            headers["X-Nurture-Signature"] = signature(self.secret, timestamp, body)
        return self._open("POST", body, headers)

    def check(self) -> str:
        """A HEAD request: the endpoint answers (any status below 500) without a notification."""
        where = shown(self.url)
        try:
            status, _ = self._open("HEAD", None, {"User-Agent": USER_AGENT})
        except MalformedUrl:
            raise
        except PermanentFailure as failure:  # 405 and the like: it answers, it only refuses HEAD
            if any(f"HTTP {status}" in str(failure) for status in (401, 403, 404, 410)):
                raise
            return f"{where} answers ({failure})"
        signed = (
            "signed" if self.secret else "NOT signed (set NURTURE_NOTIFICATIONS__WEBHOOK_SECRET)"
        )
        return f"{where} answers HTTP {status}; requests are {signed}"

    def _open(self, method: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str]:
        try:
            request = urllib.request.Request(self.url, body, headers, method=method)
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            text = redact(error.read().decode(errors="replace"), self.secrets)
            retry_after = error.headers.get("Retry-After")
            raise http_failure("webhook", error.code, text, retry_after) from None
        except (OSError, ValueError, InvalidURL) as error:  # URLError is an OSError
            raise transport_failure("webhook", error, self.url) from None
