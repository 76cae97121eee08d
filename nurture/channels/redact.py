"""Secrets out of messages: every channel error passes through `redact` before it is raised.

A provider's URL often is its credential (a Slack incoming webhook is a secret path, a hook may
carry `?token=`), and HTTP libraries put the whole URL in their exceptions. So a message keeps
`scheme://host` of a URL and drops the rest, and drops every configured secret it contains:
what reaches the execution log, `nurture logs`, stats, the API and the report is then safe.

    raise PermanentFailure(redact(f"Slack: {error}", url_secrets(url)))
"""

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import SecretStr

from nurture.channels.protocol import PermanentFailure, TemporaryFailure

if TYPE_CHECKING:
    from nurture.channels.config import Providers

HIDDEN = "…"
_SHORTEST = 4  # a shorter fragment ("/", "/x") is no secret, and hiding it would garble text
_URL = re.compile(
    r"\b([a-zA-Z][a-zA-Z0-9+.-]{1,15})://([^\s/?#'\"<>@]*@)?([^\s/?#'\"<>]*)([^\s'\"<>]*)"
)
_PAIRS = re.compile(
    r"(?i)\b(token|secret|password|passwd|pwd|api[_-]?key|key|signature|sig|auth)=[^&\s'\"]+"
)
_SCHEMES = re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+")
_SLACK_TOKEN = re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+")
_REQUESTS_PATH = re.compile(r"(with url: )\S+")  # requests: "Max retries exceeded with url: /..."


def shown(url: str) -> str:
    """A URL as a message may show it: `scheme://host[:port]`, then `/…` when it has more."""
    try:
        parts = urlsplit(url.strip())
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "(not shown)"
    if not parts.scheme or not host or any(c.isspace() for c in host):
        return "(not shown)"
    more = parts.path not in ("", "/") or parts.query or parts.fragment
    return f"{parts.scheme}://{host}" + (f"/{HIDDEN}" if more else "")


def url_secrets(url: str | None) -> list[str]:
    """The parts of a URL a message must not show: all of it, its path on, its query, its user."""
    if not url:
        return []
    found = [url, url.strip()]
    head, slashes, rest = url.partition("://")
    tail = rest if slashes else head
    if "/" in tail:
        found.append(tail[tail.index("/") :])
    try:
        parts = urlsplit(url)
        found += [parts.query, parts.netloc.rpartition("@")[0], parts.password or ""]
    except ValueError:  # an invalid IPv6 host: the whole URL and its path are already listed
        pass
    return found


def secrets_of(providers: "Providers") -> list[str]:
    """Every secret value the providers hold: SecretStr settings and the secret parts of URLs."""
    configs = (providers.email, providers.twilio, providers.notifications, providers.unsubscribe)
    found = [
        value.get_secret_value()
        for config in configs
        for value in dict(config or {}).values()
        if isinstance(value, SecretStr)
    ]
    notifications = providers.notifications
    if notifications is not None:  # Twilio's api_url holds no secret: a user in it is refused
        slack = notifications.slack_webhook_url
        found += url_secrets(slack.get_secret_value() if slack else None)
        found += url_secrets(notifications.webhook_url)
    return found


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secrets, URLs cut to `scheme://host`, tokens and passwords dropped."""
    for secret in sorted({s for s in secrets if len(s) >= _SHORTEST}, key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    text = _URL.sub(_host_only, text)
    text = _PAIRS.sub(lambda found: f"{found.group(1)}={HIDDEN}", text)
    text = _SCHEMES.sub(lambda found: f"{found.group(1)} {HIDDEN}", text)
    text = _SLACK_TOKEN.sub(f"xox{HIDDEN}", text)
    return _REQUESTS_PATH.sub(rf"\g<1>{HIDDEN}", text)


def _host_only(found: re.Match[str]) -> str:
    scheme, _user, host, rest = found.groups()
    return f"{scheme}://{host}" + (f"/{HIDDEN}" if rest.strip("/") else "")


def malformed_url(error: Exception) -> bool:
    """Whether an HTTP library refused the URL itself: no send can ever succeed with it."""
    import http.client  # here: the settings import this module, and most commands send nothing
    import urllib.error

    if isinstance(error, urllib.error.URLError):
        return isinstance(error.reason, str)  # "no host given", "unknown url type"
    # ValueError covers urllib's "unknown url type", "Invalid IPv6 URL" and the idna codec.
    return isinstance(error, ValueError | http.client.InvalidURL)


def transport_failure(service: str, error: Exception, url: str) -> Exception:
    """An exception of the HTTP library as a failure whose message shows no secret.

    A malformed URL is permanent (retrying cannot help); a network error is temporary.
    """
    if malformed_url(error):
        return malformed(service, url, redact(str(error), url_secrets(url)))
    return TemporaryFailure(redact(f"{service}: {type(error).__name__}: {error}", url_secrets(url)))


class MalformedUrl(PermanentFailure):
    """The provider's URL is one no HTTP library takes: every send fails, none is retried."""


def malformed(service: str, url: str, reason: str = "") -> MalformedUrl:
    """The failure of every send to a malformed URL; it names no more than the URL's host."""
    because = f" ({reason})" if reason else ""
    return MalformedUrl(f"{service}: the URL {shown(url)} is malformed{because}: fix the setting")
