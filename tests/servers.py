"""Real local servers for channel tests: SMTP (aiosmtpd, with STARTTLS, implicit TLS and AUTH),
Twilio's Messages API, and a plain HTTP receiver for Slack and webhooks.

The SMTP relay (`Mailbox`) and `FakeTwilio` misbehave on demand, as real providers do:

    faults = Faults({Fault("late", 3.0): 0.2, Fault("busy", 30): 0.05}, seed=7)
    twilio = FakeTwilio(faults)          # or Mailbox(faults=faults)
    faults.push(Fault("drop"), None)     # the next message request is dropped, the one after not
    twilio.copies()                      # Counter {(recipient, body): copies stored}

Each message request (a POST to Messages.json; an SMTP DATA) takes the next pushed fault, else
draws one with the seeded odds; `faults.injected` counts what was done. The kinds:

- slow(seconds): waits, then stores the message and answers (a slow provider);
- late(seconds): stores the message, then waits before answering (past the client's timeout,
  the provider has it and the client does not know);
- drop: stores the message, then closes the connection without answering;
- cut (Twilio): stores the message, answers with half of its body, then closes;
- busy(seconds): answers 429 with `Retry-After: seconds` (SMTP: 450), stores nothing;
- error(status): answers `status` (500, 503; SMTP: 451), stores nothing;
- reset: drawn per connection, before anything is read: Twilio's closes it with an RST, the
  relay hangs up before its greeting.

Nothing listening at all: point the client at `free_port()`; `with twilio.outage():` closes
Twilio's port for the block; a relay goes down when its `smtp_server` block ends and comes back
with `smtp_server(mailbox, port=port)`.
"""

import asyncio
import base64
import json
import socket
import ssl
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from faults import Fault, Faults


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# SMTP ---------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the SMTP server received; `reply` makes it answer RCPT with an error instead,
    `mail_reply` MAIL; `faults` apply to the reply to each message's DATA (and to connections)."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    reply: str | None = None
    mail_reply: str | None = None
    faults: Faults | None = None
    connections: int = 0  # SMTP connections the relay accepted

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from, envelope.mail_options = address, mail_options
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.reply:
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        fault = self.faults.draw() if self.faults else None
        kind = fault.kind if fault else None
        if kind == "busy":
            return "450 4.7.1 Too many messages, try again later"
        if kind == "error":
            return "451 4.3.0 Temporary failure, message not accepted"
        if kind == "slow":
            await asyncio.sleep(fault.seconds)
        self.envelopes.append(envelope)
        wire = envelope.content.replace(b"\r\n", b"\n")  # as a mail client shows it
        self.messages.append(message_from_bytes(wire, policy=policy.default))
        if kind == "late":
            await asyncio.sleep(fault.seconds)
        if kind == "drop":
            server.transport.abort()
        return "250 Message accepted"

    def copies(self) -> Counter[tuple[str, str]]:
        """Copies stored per (recipient, text body)."""
        copies: Counter[tuple[str, str]] = Counter()
        for envelope, mail in zip(self.envelopes, self.messages, strict=True):
            text = mail.get_body(("plain",))
            body = text.get_content() if text is not None else ""
            copies.update((recipient, body) for recipient in envelope.rcpt_tos)
        return copies


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
        self.ready = False  # start() connects once to see the server up: no fault for that

    def start(self) -> None:
        super().start()
        self.ready = True

    def factory(self):
        protocol = super().factory()
        self.handler.connections += self.ready  # not start()'s own probe
        faults = self.handler.faults
        if self.ready and faults is not None and faults.draw("connect") is not None:
            protocol.connection_made = _hang_up  # before the greeting
            protocol.connection_lost = lambda error: None
        self.sessions.append(protocol)
        return protocol

    def hang_up(self) -> None:
        async def close() -> None:
            for protocol in self.sessions:
                if protocol.transport is not None:
                    protocol.transport.abort()
            await asyncio.sleep(0.01)  # the transports finish closing on the loop

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=5)


def _hang_up(transport: asyncio.BaseTransport) -> None:
    transport.abort()


# HTTP ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hold: threading.Event | None = None  # answer only once this is set
    drop: bool = False  # close the connection instead of answering
    cut: bool = False  # close the connection halfway through the answer's body


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}

    @property
    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlparse(self.path).query).items()}

    def json(self) -> Any:
        return json.loads(self.body)


class Recorder:
    """A local HTTP server: records every request, answers with the next scripted reply
    (`script`), else with `answer(request)`. `faults` may reset connections as they arrive."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.requests: list[Request] = []
        self.script: list[Reply] = []
        self.lock = threading.Lock()
        self.received = threading.Event()
        self.faults = faults
        self.server: ThreadingHTTPServer | None = None
        self.keep_alive = False  # True: HTTP/1.1, a connection answers request after request
        self.connections = 0  # TCP connections accepted

    def answer(self, request: Request) -> Reply:
        return Reply(200, "ok")

    def handle(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append(request)
            scripted = self.script.pop(0) if self.script else None
        self.received.set()
        return scripted or self.answer(request)

    def resets(self) -> bool:
        """Whether to reset the connection just accepted (a `reset` fault)."""
        return self.faults is not None and self.faults.draw("connect") is not None

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Serve on 127.0.0.1 for the block; the base URL."""
        self._listen(("127.0.0.1", 0))
        try:
            yield f"http://127.0.0.1:{self.server.server_address[1]}"
        finally:
            self._close()

    @contextmanager
    def outage(self) -> Iterator[None]:
        """Nothing listens on the server's port for the block (connections are refused)."""
        address = self.server.server_address
        self._close()
        try:
            yield
        finally:
            self._listen(address)

    def _listen(self, address: tuple[str, int]) -> None:
        server = _Server(address, _handler(self))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self.server = server

    def _close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of senders is accepted, not dropped at the handshake


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def handle(self) -> None:
            with recorder.lock:
                recorder.connections += 1
            if recorder.keep_alive:
                self.protocol_version = "HTTP/1.1"
            if recorder.resets():  # an RST, before reading anything
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                return
            super().handle()

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, self.path, dict(self.headers.items()), body)
            reply = recorder.handle(request)
            if reply.delay:
                time.sleep(reply.delay)
            if reply.hold is not None:
                reply.hold.wait(60)
            if reply.drop:
                self.close_connection = True
                return
            with suppress(BrokenPipeError, ConnectionResetError):  # the client timed out
                self._answer(reply)

        def _answer(self, reply: Reply) -> None:
            payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            data = payload.encode()
            self.send_response(reply.status)
            kind = "text/plain" if isinstance(reply.body, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data[: len(data) // 2] if reply.cut else data)
            self.close_connection = self.close_connection or reply.cut

        do_GET = do_POST = do_HEAD = _any  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    return Handler


ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "twilio-test-token"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"

# Twilio's magic test numbers: the same answers its test credentials give.
INVALID_NUMBER = "+15005550001"  # 21211
UNSUBSCRIBED = "+15005550004"  # 21610


class FakeTwilio(Recorder):
    """Twilio's REST API as documented: Basic auth with the account SID and token, form fields
    in, JSON out, errors as {code, message, more_info, status}. It keeps the messages it took
    (`messages`, listed newest first by GET Messages.json with To, From, DateSent and paging).
    With `hold` set, a message is taken but its answer waits for the event; `faults` (this
    module's docstring) make it slow, late, dropped, busy, failing or resetting."""

    hold: threading.Event | None = None
    lookups = True  # False: listing messages is refused, so no send can be settled by a lookup

    def __init__(self, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.messages: list[dict[str, Any]] = []

    def answer(self, request: Request) -> Reply:
        user, _, password = _basic(request.headers.get("Authorization", ""))
        if (user, password) != (ACCOUNT_SID, AUTH_TOKEN):
            return error(401, 20003, "Authentication Error - invalid username")
        path = urlparse(request.path).path
        if path == f"/2010-04-01/Accounts/{ACCOUNT_SID}.json" and request.method == "GET":
            return Reply(
                200, {"sid": ACCOUNT_SID, "friendly_name": "Coach Kim", "status": "active"}
            )
        if path == MESSAGES and request.method == "POST":
            fault = self.faults.draw() if self.faults else None
            return replace(self.faulty(request.form, fault), hold=self.hold)
        if path == MESSAGES and request.method == "GET":
            if not self.lookups:  # an account whose key may send but not read the log
                return error(403, 20008, "Resource not accessible with this credential")
            return self.listing(request.query)
        return error(404, 20404, f"The requested resource {path} was not found")

    def faulty(self, form: dict[str, str], fault: Fault | None) -> Reply:
        """The answer to a message request under `fault`: taken, refused, late or dropped."""
        kind = fault.kind if fault else None
        if kind == "busy":
            retry = {"Retry-After": f"{fault.seconds:g}"}
            return error(429, 20429, "Too Many Requests", **retry)
        if kind == "error":
            return error(fault.status, 20000 + fault.status, "Service Unavailable")
        if kind == "slow":
            time.sleep(fault.seconds)
        reply = self.message(form)
        late = fault.seconds if kind == "late" else 0.0
        return replace(reply, delay=late, drop=kind == "drop", cut=kind == "cut")

    def message(self, form: dict[str, str]) -> Reply:
        to = form.get("To", "").removeprefix("whatsapp:")
        if to == INVALID_NUMBER:
            return error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to == UNSUBSCRIBED:
            return error(400, 21610, "Attempt to send to unsubscribed recipient")
        if not form.get("Body") and not form.get("ContentSid"):
            return error(400, 21602, "Message body is required.")
        sid = "SM" + uuid.uuid4().hex
        resource = {
            "sid": sid, "account_sid": ACCOUNT_SID, "to": form["To"], "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body", ""), "status": "queued", "num_segments": "1",
            "date_created": format_datetime(datetime.now(UTC), usegmt=True),
            "date_sent": None,  # queued: Twilio has not sent it yet
            "direction": "outbound-api", "uri": f"{MESSAGES.removesuffix('.json')}/{sid}.json",
        }  # fmt: skip
        with self.lock:
            self.messages.append(resource | {"form": form})
        return Reply(201, resource)

    def listing(self, query: dict[str, str]) -> Reply:
        """A page of the messages taken, newest first, as Twilio lists them."""
        with self.lock:
            found = [m for m in reversed(self.messages) if _listed(m, query)]
        size, page = int(query.get("PageSize", 50)), int(query.get("Page", 0))
        shown = [{k: v for k, v in m.items() if k != "form"} for m in found[page * size :][:size]]
        filters = {k: v for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")}

        def uri(number: int) -> str:
            return f"{MESSAGES}?{urlencode(filters | {'PageSize': size, 'Page': number})}"

        more = (page + 1) * size < len(found)
        return Reply(200, {
            "messages": shown, "page": page, "page_size": size, "start": page * size,
            "end": page * size + max(len(shown) - 1, 0), "uri": uri(page),
            "first_page_uri": uri(0), "previous_page_uri": uri(page - 1) if page else None,
            "next_page_uri": uri(page + 1) + f"&PageToken=PA{found[(page + 1) * size - 1]['sid']}"
            if more else None,
        })  # fmt: skip

    def sent(self) -> list[dict[str, str]]:
        """The form of every message request (taken or refused)."""
        return [r.form for r in self.requests if r.path.endswith("/Messages.json")]

    def copies(self) -> Counter[tuple[str, str]]:
        """Copies taken per (recipient, body); a template's body is its ContentSid and variables."""
        with self.lock:
            forms = [m["form"] for m in self.messages]
        return Counter(
            (f["To"], f.get("Body") or f"{f['ContentSid']} {f.get('ContentVariables', '')}")
            for f in forms
        )


def _listed(message: dict[str, Any], query: dict[str, str]) -> bool:
    """Whether Twilio's list filters (To, From, DateSent, DateSent<, DateSent>) keep it."""
    if any(
        query.get(name, message[key]) != message[key]
        for name, key in (("To", "to"), ("From", "from"))
    ):
        return False
    bounds = {k: v for k, v in query.items() if k.startswith("DateSent")}
    if not bounds:
        return True
    if message["date_sent"] is None:  # not sent yet: no date to filter on
        return False
    sent = parsedate_to_datetime(message["date_sent"])
    for name, value in bounds.items():
        day = datetime.fromisoformat(value.removesuffix("Z")).date()
        wanted = {"DateSent": sent.date() == day, "DateSent<": sent.date() <= day}
        if not wanted.get(name, sent.date() >= day):
            return False
    return True


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
