"""OAuth 2.0 Bearer tokens from a refresh token (RFC 6749 §6), for CalDAV servers that accept
nothing else (Google's).

An access token is fetched with the refresh-token grant, kept until shortly before it expires,
and sent as `Authorization: Bearer ...`; a 401 (the token revoked or expired early) fetches a
new one and sends the request once more. A refusal names the setting to fix, never a secret.
"""

import threading
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from nurture.channels.protocol import TemporaryFailure
from nurture.channels.redact import redact, shown
from nurture.errors import ConfigError

SETTING = "NURTURE_AVAILABILITY__CALDAV__OAUTH__"
EARLY = 60.0
"""Seconds before its expiry an access token is replaced (a tenth of its life, if shorter)."""


class RefreshTokenAuth(AuthBase):
    """`requests` auth: a Bearer access token from the refresh-token grant, renewed as needed."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | None,
        refresh_token: str | None,
        timeout: float = 10.0,
    ) -> None:
        self.token_url, self.client_id, self.timeout = token_url, client_id, timeout
        self._secrets = (client_secret, refresh_token)  # None: not set, said when needed
        self._token: tuple[str, float] | None = None  # the access token, when to replace it
        self._lock = threading.Lock()

    @classmethod
    def of(cls, settings: Any, timeout: float) -> "RefreshTokenAuth":
        """From `[availability.caldav.oauth]` (its secrets from the environment or .env)."""
        secret, token = settings.client_secret, settings.refresh_token
        return cls(
            settings.token_url,
            settings.client_id,
            secret.get_secret_value() if secret else None,
            token.get_secret_value() if token else None,
            timeout,
        )

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        request.register_hook("response", self._again_if_refused)
        return request

    def token(self, refused: str | None = None) -> str:
        """The access token, fetched when there is none, it is about to expire, or the server
        `refused` it."""
        with self._lock:
            kept = self._token
            if kept is not None and kept[0] != refused and time.monotonic() < kept[1]:
                return kept[0]
            token, lasts = self._grant()
            self._token = (token, time.monotonic() + lasts - min(EARLY, lasts / 10))
            return token

    def _again_if_refused(self, response: requests.Response, **options: Any) -> requests.Response:
        """A 401: once more with a new access token (HTTPDigestAuth's way of answering one)."""
        sent = response.request
        if response.status_code != 401:  # connection.send runs no hook: the retry's answer stays
            return response
        refused = str(sent.headers.get("Authorization", "")).removeprefix("Bearer ")
        response.content  # noqa: B018 (read, so that the connection can serve the retry)
        response.close()
        retry = sent.copy()
        retry.headers["Authorization"] = f"Bearer {self.token(refused)}"
        answer = response.connection.send(retry, **options)
        answer.history.append(response)
        answer.request = retry
        return answer

    def _grant(self) -> tuple[str, float]:
        client_secret, refresh_token = self._secrets
        for value, name in ((client_secret, "CLIENT_SECRET"), (refresh_token, "REFRESH_TOKEN")):
            if not value:  # not at load: validate and plan run in CI without the secrets
                raise ConfigError(
                    f"[availability.caldav.oauth] needs {SETTING}{name}: set it in the "
                    "environment or .env (see docs/guides/appointments.md)"
                )
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.client_id,
            "client_secret": client_secret,
        }
        try:
            answer = requests.post(self.token_url, data=form, timeout=self.timeout)
        except requests.RequestException as error:
            raise TemporaryFailure(
                f"could not reach {self._who()} for an access token ({type(error).__name__})"
            ) from None
        if answer.status_code >= 500 or answer.status_code == 429:
            raise TemporaryFailure(f"{self._who()} answered HTTP {answer.status_code}")
        body = _json(answer)
        if answer.status_code != 200 or not isinstance(body.get("access_token"), str):
            raise ConfigError(self._refusal(answer.status_code, body))
        return body["access_token"], _lifetime(body.get("expires_in"))

    def _refusal(self, status: int, body: dict[str, Any]) -> str:
        code = str(body.get("error") or f"HTTP {status}")
        secrets = [secret for secret in self._secrets if secret]
        said = redact(str(body.get("error_description") or "no reason given"), secrets)
        if code == "invalid_client":
            what = "the client"
            fix = (
                f"[availability.caldav.oauth] client_id and {SETTING}CLIENT_SECRET to the client's"
            )
        else:
            what, fix = "the refresh token", f"{SETTING}REFRESH_TOKEN to a new one"
        who = self._who()
        return (
            f"{who[0].upper()}{who[1:]} refused {what} ({code}): {said.rstrip('.')}; set {fix} "
            "(see docs/guides/appointments.md)"
        )

    def _who(self) -> str:
        host = urlsplit(self.token_url).hostname or ""
        return (
            "Google"
            if host.endswith(".googleapis.com")
            else f"the token endpoint at {shown(self.token_url)}"
        )


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _lifetime(expires_in: Any) -> float:
    """An access token's seconds to live: `expires_in`, else an hour (Google's)."""
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        return 3600.0
    return seconds if seconds > 0 else 3600.0
