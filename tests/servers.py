"""Real local servers for channel tests: SMTP (aiosmtpd, with STARTTLS, implicit TLS and AUTH),
Twilio's Messages API, and a plain HTTP receiver for Slack and webhooks."""

import asyncio
import base64
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# SMTP ---------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the SMTP server received; `reply` makes it answer RCPT with an error instead."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.reply:
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        wire = envelope.content.replace(b"\r\n", b"\n")  # as a mail client shows it
        self.messages.append(message_from_bytes(wire, policy=policy.default))
        return "250 Message accepted"


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    ca_file: Path


def local_tls(tmp_path: Path) -> Tls:
    """A throwaway CA (trustme) and a certificate for 127.0.0.1 signed by it."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Tls(context, ca_file)


@contextmanager
def smtp_server(
    mailbox: Mailbox, *, tls: Tls | None = None, implicit: bool = False,
    users: dict[str, str] | None = None, port: int | None = None,
) -> Iterator[int]:  # fmt: skip
    """An SMTP server on 127.0.0.1 (on `port`, else a free one) for the block; its port."""
    options: dict[str, Any] = {}
    if tls is not None and implicit:
        options["ssl_context"] = tls.server
    elif tls is not None:
        options |= {"tls_context": tls.server, "require_starttls": True}
    if users is not None:

        def authenticate(server, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword) and users.get(data.login.decode()) == (
                data.password.decode()
            )
            if ok:
                mailbox.logins.append(data.login.decode())
            return AuthResult(success=ok, handled=False)  # aiosmtpd replies 535 on failure

        options |= {"authenticator": authenticate, "auth_required": True}
    port = port or free_port()
    controller = Relay(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.hang_up()
        controller.stop()


class Relay(Controller):
    """aiosmtpd's controller that also hangs up on clients still connected when it stops
    (nurture keeps its connections open between messages), as a relay going down does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[Any] = []

    def factory(self):
        protocol = super().factory()
        self.sessions.append(protocol)
        return protocol

    def hang_up(self) -> None:
        async def close() -> None:
            for protocol in self.sessions:
                if protocol.transport is not None:
                    protocol.transport.abort()
            await asyncio.sleep(0.01)  # the transports finish closing on the loop

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=5)


# HTTP ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hold: threading.Event | None = None  # answer only once this is set


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}

    def json(self) -> Any:
        return json.loads(self.body)


class Recorder:
    """A local HTTP server: records every request, answers with the next scripted reply
    (`script`), else with `answer(request)`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: list[Reply] = []
        self.lock = threading.Lock()
        self.received = threading.Event()

    def answer(self, request: Request) -> Reply:
        return Reply(200, "ok")

    def handle(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append(request)
            scripted = self.script.pop(0) if self.script else None
        self.received.set()
        return scripted or self.answer(request)

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Serve on 127.0.0.1 for the block; the base URL."""
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, dict(self.headers.items()), body)
                reply = recorder.handle(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.hold is not None:
                    reply.hold.wait(60)
                payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                data = payload.encode()
                try:
                    self.send_response(reply.status)
                    kind = "text/plain" if isinstance(reply.body, str) else "application/json"
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass

            do_GET = do_POST = do_HEAD = _any  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "twilio-test-token"

# Twilio's magic test numbers: the same answers its test credentials give.
INVALID_NUMBER = "+15005550001"  # 21211
UNSUBSCRIBED = "+15005550004"  # 21610


class FakeTwilio(Recorder):
    """Twilio's REST API as documented: Basic auth with the account SID and token, form fields
    in, JSON out, errors as {code, message, more_info, status}. With `hold` set, a message is
    accepted but its answer waits for the event (a provider that got it, a client that did not)."""

    hold: threading.Event | None = None

    def answer(self, request: Request) -> Reply:
        user, _, password = _basic(request.headers.get("Authorization", ""))
        if (user, password) != (ACCOUNT_SID, AUTH_TOKEN):
            return error(401, 20003, "Authentication Error - invalid username")
        path = urlparse(request.path).path
        if path == f"/2010-04-01/Accounts/{ACCOUNT_SID}.json" and request.method == "GET":
            return Reply(
                200, {"sid": ACCOUNT_SID, "friendly_name": "Coach Kim", "status": "active"}
            )
        if path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json" and request.method == "POST":
            return replace(self.message(request.form), hold=self.hold)
        return error(404, 20404, f"The requested resource {path} was not found")

    def message(self, form: dict[str, str]) -> Reply:
        to = form.get("To", "").removeprefix("whatsapp:")
        if to == INVALID_NUMBER:
            return error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to == UNSUBSCRIBED:
            return error(400, 21610, "Attempt to send to unsubscribed recipient")
        if not form.get("Body") and not form.get("ContentSid"):
            return error(400, 21602, "Message body is required.")
        sid = "SM" + uuid.uuid4().hex
        return Reply(201, {
            "sid": sid, "account_sid": ACCOUNT_SID, "to": form["To"], "from": form.get("From"),
            "body": form.get("Body", ""), "status": "queued", "num_segments": "1",
            "date_created": "Wed, 25 Nov 2026 09:00:00 +0000", "direction": "outbound-api",
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
        })  # fmt: skip

    def sent(self) -> list[dict[str, str]]:
        """The form of every accepted message request."""
        return [r.form for r in self.requests if r.path.endswith("/Messages.json")]


def error(status: int, code: int, message: str, **headers: str) -> Reply:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply(status, body, headers)


def _basic(header: str) -> tuple[str, str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "", "", ""
    return base64.b64decode(encoded).decode().partition(":")
