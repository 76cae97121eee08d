"""Real local calendar servers: Radicale (CalDAV, from PyPI), an OAuth 2.0 token endpoint, and
a proxy in front of Radicale that takes only `Authorization: Bearer <a token it granted>`, as
Google's CalDAV does.

    tokens = TokenEndpoint(expires_in=2)      # grants tokens for REFRESH_TOKEN, lasting 2 s
    with tokens.serving() as token_url, bearer_only(radicale_url, tokens) as url:
        ...                                   # url: Radicale, for Bearer tokens only
    tokens.grants                             # refresh-token grants so far
    tokens.revoke()                           # the refresh token is refused from now on
"""

import http.client
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from servers import Recorder, Reply, Request, free_port

CLIENT_ID = "nurture-test.apps.googleusercontent.com"
CLIENT_SECRET = "client-secret-GOCSPX-test"
REFRESH_TOKEN = "1//refresh-token-test-0123456789"
METHODS = ("GET", "PUT", "DELETE", "OPTIONS", "PROPFIND", "PROPPATCH", "REPORT", "MKCALENDAR")


@contextmanager
def radicale(folder: Path) -> Iterator[str]:
    """Radicale on a free port, storing in `folder`, any login accepted: its URL."""
    port, config = free_port(), folder / "radicale.conf"
    config.write_text(
        f"[server]\nhosts = 127.0.0.1:{port}\n[auth]\ntype = none\n"
        f"[storage]\nfilesystem_folder = {folder / 'collections'}\n[logging]\nlevel = warning\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", str(config)], stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "Radicale did not start"
            time.sleep(0.1)
    try:
        yield url
    finally:
        server.terminate()
        server.communicate(timeout=10)


def dentist(calendar: Any, start: datetime) -> None:
    """The coach's own appointment elsewhere, in their calendar (not one of nurture's)."""
    stamp = f"{start:%Y%m%dT%H%M%SZ}"
    ends = f"{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}"
    calendar.save_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:dentist-1\r\nDTSTAMP:{stamp}\r\nDTSTART:{stamp}\r\nDTEND:{ends}\r\n"
        "SUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def ours(calendar: Any) -> list[Any]:
    """nurture's events in the calendar, parsed."""
    from icalendar import Calendar

    found = [Calendar.from_ical(e.data) for e in calendar.events()]
    events = [e for c in found for e in c.walk("VEVENT")]
    return [e for e in events if str(e["uid"]).endswith("@nurture")]


@dataclass
class Login:
    """How nurture reaches the coach's calendar: the base URL to use instead of Radicale's,
    the lines of `[availability.caldav]` that say who it is, and those of its .env."""

    url: str
    toml: str
    env: str
    tokens: "TokenEndpoint | None" = None
    token_url: str | None = None

    def settings(self, calendar_url: str, radicale: str) -> str:
        """`[availability.caldav]` for the calendar at `calendar_url` (one of Radicale's)."""
        url = str(calendar_url).replace(radicale, self.url)
        return f'[availability.caldav]\nurl = "{url}"\n{self.toml}'


def password_login(radicale: str) -> Login:
    return Login(
        radicale, 'username = "coach"\n', "NURTURE_AVAILABILITY__CALDAV__PASSWORD=secret\n"
    )


@contextmanager
def oauth_login(radicale: str, expires_in: int = 3600) -> Iterator[Login]:
    """Google's way: Radicale behind a Bearer-only proxy, tokens from a local token endpoint."""
    tokens = TokenEndpoint(expires_in)
    with tokens.serving() as token_url, bearer_only(radicale, tokens) as proxy:
        toml = (
            f'[availability.caldav.oauth]\nclient_id = "{CLIENT_ID}"\n'
            f'token_url = "{token_url}/token"\n'
        )
        env = (
            f"NURTURE_AVAILABILITY__CALDAV__OAUTH__CLIENT_SECRET={CLIENT_SECRET}\n"
            f"NURTURE_AVAILABILITY__CALDAV__OAUTH__REFRESH_TOKEN={REFRESH_TOKEN}\n"
        )
        yield Login(proxy, toml, env, tokens, f"{token_url}/token")


class TokenEndpoint(Recorder):
    """An OAuth 2.0 token endpoint: the refresh-token grant for CLIENT_ID/CLIENT_SECRET and
    REFRESH_TOKEN, each access token valid `expires_in` seconds; `revoke()` ends the grant."""

    def __init__(self, expires_in: int = 3600) -> None:
        super().__init__()
        self.expires_in, self.grants, self.revoked = expires_in, 0, False
        self.tokens: dict[str, float] = {}  # access token: when it expires (monotonic)

    def answer(self, request: Request) -> Reply:
        form = request.form
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return Reply(401, {"error": "invalid_client", "error_description": "Unauthorized"})
        if form.get("grant_type") != "refresh_token":
            return Reply(400, {"error": "unsupported_grant_type"})
        if self.revoked or form.get("refresh_token") != REFRESH_TOKEN:
            said = "Token has been expired or revoked."
            return Reply(400, {"error": "invalid_grant", "error_description": said})
        with self.lock:
            self.grants += 1
            token = f"ya29.access-{self.grants}"
            self.tokens[token] = time.monotonic() + self.expires_in
        return Reply(
            200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )

    def valid(self, token: str) -> bool:
        with self.lock:
            return time.monotonic() < self.tokens.get(token, 0.0)

    def revoke(self) -> None:
        """The refresh token and every access token it gave are refused from now on."""
        with self.lock:
            self.revoked, self.tokens = True, {}


@contextmanager
def bearer_only(target: str, tokens: TokenEndpoint) -> Iterator[str]:
    """A proxy to `target` (Radicale) that answers 401 to any request without a valid Bearer
    token of `tokens`, and passes the others on as the user `coach`: its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _bearer_handler(target, tokens))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _bearer_handler(target: str, tokens: TokenEndpoint) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(target)

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            sent = self.headers.get("Authorization", "")
            if not sent.startswith("Bearer ") or not tokens.valid(sent[7:]):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Bearer realm="caldav"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization")
            }
            headers["Authorization"] = "Basic Y29hY2g6eA=="  # coach:x (Radicale takes any)
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            connection.request(self.command, self.path, body, headers)
            answer = connection.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            connection.close()

        def log_message(self, *args: object) -> None:
            pass

    for method in METHODS:
        setattr(Handler, f"do_{method}", Handler._any)
    return Handler
