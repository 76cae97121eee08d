"""Signed unsubscribe tokens and the links that carry them.

A token names a lead and a channel and is signed with HMAC-SHA256 under the project's
`[unsubscribe] secret`; it never expires (an unsubscribe link must keep working).
Templates write `{{ unsubscribe_url }}`, which renders PLACEHOLDER: the email channel, which
holds the secret, puts each recipient's own link in its place.
"""

import base64
import hashlib
import hmac
from urllib.parse import quote

from nurture.errors import InvalidToken

PLACEHOLDER = "%unsubscribe_url%"
_SIGNATURE_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def make_token(secret: str, lead_id: int, channel: str = "email") -> str:
    """A URL-safe token that opts `lead_id` out of `channel` when applied."""
    payload = f"{lead_id}:{channel}".encode()
    return f"{_b64(payload)}.{_b64(_sign(secret, payload))}"


def read_token(secret: str, token: str) -> tuple[int, str]:
    """The (lead id, channel) of a token signed with `secret`; InvalidToken otherwise."""
    encoded, _, signature = token.strip().partition(".")
    try:
        payload, given = _unb64(encoded), _unb64(signature)
        lead, _, channel = payload.decode().partition(":")
        lead_id = int(lead)
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("not an unsubscribe token (it may have been cut short)") from None
    if not hmac.compare_digest(given, _sign(secret, payload)) or not channel:
        raise InvalidToken("the unsubscribe token's signature does not match this project's secret")
    return lead_id, channel


def link(url: str | None, mailto: str, token: str) -> str:
    """The link in the message: the configured page, or a mail to `mailto` carrying the token."""
    if url:
        return url.replace("{token}", token)
    return f"mailto:{mailto}?subject={quote('unsubscribe ' + token)}"


def list_unsubscribe(url: str | None, mailto: str, token: str) -> str:
    """The List-Unsubscribe header (RFC 2369): the mail address, and the page when there is one."""
    targets = [f"<mailto:{mailto}?subject={quote('unsubscribe ' + token)}>"]
    if url:
        targets.append(f"<{url.replace('{token}', token)}>")
    return ", ".join(targets)
