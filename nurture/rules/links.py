"""Tracked links: the signed token of a link (or an open pixel) in one message, and the rewriting.

A token names an execution by its idempotency key (enrollment, step, attempt) and a link by
its place in the message (`o` for the open pixel); the URL itself is kept with the execution
(its detail's `links`), so a token stays short and cannot send anyone elsewhere. Tokens are
signed with HMAC-SHA256 under the project's secret, kept apart from unsubscribe tokens by a
purpose prefix: unguessable, and a forged or altered one is refused.
"""

import base64
import hashlib
import hmac
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from nurture.errors import InvalidToken
from nurture.spec.templates import is_url

PURPOSE = b"nurture-link:"
OPEN = "o"
_SIGNATURE_BYTES = 16
_IN_TEXT = re.compile(r"https?://[^\s<>\"'()]+", re.I)
_HREF = re.compile(r"""(href\s*=\s*)(["'])(.*?)\2""", re.I | re.S)
_TRAILING = ".,;:!?"


class Target(NamedTuple):
    """What a token names: an execution's key and a link's place in its message (or OPEN)."""

    enrollment_id: int
    step_id: str
    attempt: int
    link: str

    @property
    def link_index(self) -> int | None:
        return None if self.link == OPEN else int(self.link)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), PURPOSE + payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def make_token(secret: str, key: str, link: int | str) -> str:
    """The token of link number `link` (or OPEN) of the message whose key is `key`."""
    payload = f"{key}:{link}".encode()
    return f"{_b64(payload)}.{_b64(_sign(secret, payload))}"


def read_token(secret: str, token: str) -> Target:
    """What a token signed with `secret` names; InvalidToken otherwise."""
    encoded, _, signature = token.strip().partition(".")
    try:
        payload, given = _unb64(encoded), _unb64(signature)
        enrollment, step_id, attempt, link = payload.decode().split(":")
        target = Target(int(enrollment), step_id, int(attempt), link)
        if link != OPEN:
            int(link)
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("not a link token (it may have been cut short)") from None
    if not hmac.compare_digest(given, _sign(secret, payload)):
        raise InvalidToken("the link token's signature does not match this project's secret")
    return target


@dataclass
class Tracker:
    """The tracked links of one message: each target URL once, in the order met."""

    secret: str
    base_url: str
    key: str
    urls: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> str:
        """The tracked link to `url` (what `{{ link(url) }}` renders)."""
        url = str(url).strip()
        if not is_url(url) or url.startswith(self.prefix):
            return url
        if url not in self.urls:
            self.urls.append(url)
        return self.prefix + make_token(self.secret, self.key, self.urls.index(url))

    @property
    def prefix(self) -> str:
        return f"{self.base_url.rstrip('/')}/c/"

    def pixel(self) -> str:
        """The open pixel's address."""
        return f"{self.base_url.rstrip('/')}/o/{make_token(self.secret, self.key, OPEN)}"


def rewrite_text(text: str, track: Callable[[str], str]) -> str:
    """Every web address of a plain text through `track` (a sentence's full stop left out)."""

    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        kept = len(url.rstrip(_TRAILING))
        return track(url[:kept]) + url[kept:]

    return _IN_TEXT.sub(one, text)


def rewrite_html(markup: str, track: Callable[[str], str]) -> str:
    """Every `href` of an HTML body that is a web address through `track`."""

    def one(match: re.Match[str]) -> str:
        url = html.unescape(match.group(3))
        if not is_url(url):
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{html.escape(track(url))}{match.group(2)}"

    return _HREF.sub(one, markup)


def with_pixel(markup: str, address: str) -> str:
    """An HTML body with the open pixel before `</body>` (or at its end)."""
    image = f'<img src="{html.escape(address)}" width="1" height="1" alt="" style="display:none">'
    at = markup.lower().rfind("</body>")
    return markup + image if at < 0 else markup[:at] + image + markup[at:]
