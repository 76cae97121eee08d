"""`send_async` (the event loop's send) against `send` (a thread's), on the same real local
servers: every fault FakeTwilio and the SMTP relay inject ends the same way on both paths, the
provider receives the same message, and the connections are reused and never more than the
channel's `concurrency`."""

import asyncio
import re
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

import pytest
from servers import (
    INVALID_NUMBER,
    UNSUBSCRIBED,
    FakeTwilio,
    Fault,
    Faults,
    Mailbox,
    Reply,
    free_port,
    local_tls,
    smtp_server,
)
from test_email import message as email
from test_email import smtp, unsubscribe
from test_twilio import TEMPLATE, config

from nurture.channels import OutgoingMessage, PermanentFailure, TemporaryFailure, UncertainSend
from nurture.channels.smtp import SmtpChannel
from nurture.channels.twilio import TwilioChannel

PATHS = ("send", "send_async")


def run(coroutine: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(coroutine())


def outcome(channel: Any, message: OutgoingMessage, path: str) -> tuple[str, str, Any]:
    """What a send ends with: the result's kind and its id or the failure's message."""

    async def on_the_loop() -> Any:
        try:
            return await channel.send_async(message)
        finally:
            await channel.aclose()

    try:
        result = channel.send(message) if path == "send" else run(on_the_loop)
    except (TemporaryFailure, PermanentFailure, UncertainSend) as failure:
        extra = getattr(failure, "retry_after", getattr(failure, "unsubscribed", None))
        return type(failure).__name__, str(failure), extra
    return "sent", result.provider_id[:2], None


def text(to: str = "+15555550100") -> OutgoingMessage:
    return OutgoingMessage(channel="sms", recipient=to, body="Hi Sam", key="7:hello:1")


# Twilio ---------------------------------------------------------------------------------------


@pytest.fixture
def twilio():
    fake = FakeTwilio(Faults())
    with fake.serving() as url:
        fake.url = url
        yield fake


def sms(url: str, timeout: float = 2.0, **options) -> TwilioChannel:
    return TwilioChannel(config(url, timeout=timeout, **options), "sms")


TWILIO_CASES = {
    "sent": ([], {}, ("sent", "SM", None)),
    "late": ([Fault("late", 1.5)], {"timeout": 0.4},
             ("UncertainSend", "Twilio: no answer after the request went out: timed out waiting "
              "for the answer", None)),
    "drop": ([Fault("drop")], {},
             ("UncertainSend", "Twilio: no answer after the request went out: the connection "
              "closed without an answer", None)),
    "cut": ([Fault("cut")], {},
            ("UncertainSend", "Twilio: no answer after the request went out: the answer was cut "
             "off", None)),
    "busy": ([Fault("busy", 30)], {}, ("TemporaryFailure", "Twilio 20429: Too Many Requests", 30.0)),
    "500": ([Fault("error", status=500)], {},
            ("TemporaryFailure", "Twilio 20500: Service Unavailable", None)),
    "503": ([Fault("error", status=503)], {},
            ("TemporaryFailure", "Twilio 20503: Service Unavailable", None)),
    "slow": ([Fault("slow", 0.2)], {}, ("sent", "SM", None)),
    "wrong token": ([], {"auth_token": "wrong"},
                    ("PermanentFailure", "Twilio 20003: Authentication Error - invalid username",
                     False)),
}  # fmt: skip


@pytest.mark.parametrize("case", TWILIO_CASES)
def test_twilio_faults_end_the_same_on_both_paths(twilio, case):
    faults, options, expected = TWILIO_CASES[case]
    for path in PATHS:
        twilio.faults.push(*faults)
        assert outcome(sms(twilio.url, **options), text(), path) == expected, path


@pytest.mark.parametrize(
    ("to", "said", "unsubscribed"),
    [(INVALID_NUMBER, f"Twilio 21211: The 'To' number {INVALID_NUMBER} is not a valid phone "
      "number.", False),
     (UNSUBSCRIBED, "Twilio 21610: Attempt to send to unsubscribed recipient", True)],
)  # fmt: skip
def test_twilio_4xx_answers_are_permanent_on_both_paths(twilio, to, said, unsubscribed):
    for path in PATHS:
        assert outcome(sms(twilio.url), text(to), path) == (
            "PermanentFailure", said, unsubscribed
        ), path  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "expected"),
    [(Reply(502, "<html>Bad Gateway</html>"), ("TemporaryFailure", "Twilio 502: Bad Gateway", None)),
     (Reply(201, "<html>queued</html>"),
      ("UncertainSend", "Twilio answered 201 without the message's sid: '<html>queued</html>'",
       None)),
     (Reply(429, {"code": 20429, "message": "Too Many Requests"}, {"Retry-After": "7"}),
      ("TemporaryFailure", "Twilio 20429: Too Many Requests", 7.0))],
)  # fmt: skip
def test_twilio_answers_that_are_not_twilio_json_end_the_same_on_both_paths(
    twilio, reply, expected
):
    for path in PATHS:
        twilio.script.append(reply)
        assert outcome(sms(twilio.url), text(), path) == expected, path


def test_a_connection_reset_as_it_arrives_is_resent_only_when_twilio_has_nothing(twilio):
    for path in PATHS:
        twilio.faults.push(Fault("reset"))
        kind, said, _ = outcome(sms(twilio.url), text(), path)
        # temporary or uncertain: whether the request was written before the reset
        assert kind in ("TemporaryFailure", "UncertainSend") and "Twilio: " in said, path
    assert twilio.messages == []  # and so settle finds nothing: safe to send again


@contextmanager
def garbling() -> Iterator[str]:
    """A server that reads a request and answers something that is not HTTP."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with suppress(OSError):
            while True:
                connection, _ = listener.accept()
                with connection:
                    connection.recv(65536)
                    connection.sendall(b"SMTP? 220 hello\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_an_answer_that_is_not_http_is_uncertain_on_both_paths():
    with garbling() as url:
        for path in PATHS:
            assert outcome(sms(url), text(), path) == (
                "UncertainSend",
                "Twilio: no answer after the request went out: the answer was not HTTP",
                None,
            ), path


def test_a_refused_connection_is_temporary_on_both_paths():
    url = f"http://127.0.0.1:{free_port()}"
    said = "Twilio: could not connect: ConnectionRefusedError: [Errno 111] Connection refused"
    for path in PATHS:
        assert outcome(sms(url), text(), path) == ("TemporaryFailure", said, None), path


def test_a_name_that_does_not_resolve_is_temporary_on_both_paths():
    url = "https://api.nurture-test.invalid"
    outcomes = {path: outcome(sms(url), text(), path) for path in PATHS}
    assert outcomes["send"] == outcomes["send_async"]
    assert outcomes["send"][1].startswith("Twilio: could not connect: gaierror")


def test_a_connect_timeout_is_temporary_on_both_paths():
    with socket.socket() as full:  # an accept queue that is full: the handshake never completes
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        waiting = [socket.socket() for _ in range(3)]
        for connection in waiting:
            connection.setblocking(False)
            connection.connect_ex(full.getsockname())
        url = f"http://127.0.0.1:{full.getsockname()[1]}"
        for path in PATHS:
            assert outcome(sms(url, timeout=0.3), text(), path) == (
                "TemporaryFailure", "Twilio: could not connect: timed out", None
            ), path  # fmt: skip
        for connection in waiting:
            connection.close()


def test_a_certificate_the_client_does_not_trust_is_temporary_on_both_paths(tmp_path):
    tls = local_tls(tmp_path)
    fake = FakeTwilio()
    with fake.serving() as url:
        fake.server.socket = tls.server.wrap_socket(fake.server.socket, server_side=True)
        https = url.replace("http://", "https://")
        outcomes = {path: outcome(sms(https), text(), path) for path in PATHS}
    assert outcomes["send"] == outcomes["send_async"]
    assert "could not connect: SSLCertVerificationError" in outcomes["send"][1]
    assert fake.requests == []


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_a_ca_named_in_the_environment_is_read_when_the_channel_is_made(
    tmp_path, monkeypatch, variable
):
    tls = local_tls(tmp_path)
    fake = FakeTwilio()
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tls.ca_file))
    with fake.serving() as url:
        fake.server.socket = tls.server.wrap_socket(fake.server.socket, server_side=True)
        channel = sms(url.replace("http://", "https://"))
        monkeypatch.delenv(variable)  # read once: later changes do not matter
        assert [outcome(channel, text(), path)[0] for path in PATHS] == ["sent", "sent"]


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [("sms", {}, text()),
     ("sms", {"sms_from": None, "messaging_service_sid": "MG" + "b" * 32}, text()),
     ("whatsapp", {}, OutgoingMessage(channel="whatsapp", recipient="+15555550100", body="",
                                      key="7:hi:1", template=TEMPLATE)),
     ("whatsapp", {}, OutgoingMessage(channel="whatsapp", recipient="+15555550100",
                                      body="Hi Sam ✓ & co", key="7:hi:1"))],
)  # fmt: skip
def test_twilio_receives_the_same_request_from_both_paths(twilio, kind, options, message):
    for path in PATHS:
        channel = TwilioChannel(config(twilio.url, **options), kind)
        assert outcome(channel, message, path)[0] == "sent"
    sync, on_loop = twilio.requests
    assert sync.form == on_loop.form and sync.path == on_loop.path
    assert sync.headers["Authorization"] == on_loop.headers["Authorization"]
    assert sync.headers["Content-Type"] == on_loop.headers["Content-Type"]


def test_200_concurrent_sends_reuse_at_most_concurrency_connections():
    twilio = FakeTwilio(Faults({Fault("slow", 0.05): 1.0}))
    twilio.keep_alive = True
    with twilio.serving() as url:
        channel = sms(url, concurrency=50)

        async def twice() -> list[str]:
            sids = []
            for round_ in range(2):
                messages = [text(f"+1555{round_}{i:06d}") for i in range(200)]
                sent = await asyncio.gather(*(channel.send_async(m) for m in messages))
                sids += [s.provider_id for s in sent]
            await channel.aclose()
            return sids

        sids = run(twice)
    assert len(set(sids)) == 400 and len(twilio.messages) == 400
    assert 1 < twilio.connections <= 50  # 400 messages over 50 kept-alive connections


SID = '{"sid": "SM' + "a" * 32 + '", "status": "queued"}'
CHUNKED = (
    "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n\r\n"
    f"{10:x};ext=1\r\n{SID[:10]}\r\n{len(SID) - 10:x}\r\n{SID[10:]}\r\n0\r\nX-Trailer: 1\r\n\r\n"
).encode()
LENGTH = (
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
    f"Content-Length: {len(SID)}\r\n\r\n{SID}"
).encode()
CLOSING = (
    f"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: {len(SID)}\r\n\r\n{SID}"
).encode()


@contextmanager
def answering(answers: list[bytes]) -> Iterator[tuple[str, list[int]]]:
    """A raw HTTP/1.1 server: each request (head and Content-Length body) on a connection gets
    the next of `answers`, written a few bytes at a time; the requests each connection read."""
    listener = socket.create_server(("127.0.0.1", 0))
    per_connection: list[int] = []

    def serve(connection: socket.socket) -> None:
        index = len(per_connection)
        per_connection.append(0)
        with connection, suppress(OSError):
            data = b""
            while answers:
                while b"\r\n\r\n" not in data:
                    if not (chunk := connection.recv(65536)):
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"Content-Length: (\d+)", head)[1])
                while len(data) < length:
                    data += connection.recv(65536)
                data = data[length:]
                per_connection[index] += 1
                answer = answers.pop(0)
                for start in range(0, len(answer), 7):  # in pieces: parsed as they come
                    connection.sendall(answer[start : start + 7])
                if b"Connection: close" in answer:
                    return

    def accept() -> None:
        with suppress(OSError):
            while True:
                connection, _ = listener.accept()
                threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", per_connection
    finally:
        listener.close()


def test_send_async_reads_chunked_and_interim_answers_over_one_kept_alive_connection():
    with answering([CHUNKED, LENGTH, CHUNKED]) as (url, per_connection):
        channel = sms(url)

        async def three() -> list[str]:
            sent = [(await channel.send_async(text())).provider_id for _ in range(3)]
            await channel.aclose()
            return sent

        assert run(three) == ["SM" + "a" * 32] * 3
    assert per_connection == [3]


def test_send_async_opens_a_new_connection_after_an_answer_that_closes_it():
    with answering([CLOSING, CLOSING, LENGTH]) as (url, per_connection):
        channel = sms(url)

        async def three() -> list[str]:
            sent = [(await channel.send_async(text())).provider_id for _ in range(3)]
            await channel.aclose()
            return sent

        assert run(three) == ["SM" + "a" * 32] * 3
    assert per_connection == [1, 1, 1]


def test_a_channel_used_from_a_new_event_loop_opens_a_new_session(twilio):
    channel = sms(twilio.url)
    first = run(lambda: channel.send_async(text()))  # left open: its loop is gone
    second = outcome(channel, text(), "send_async")
    assert first.provider_id.startswith("SM") and second == ("sent", "SM", None)


# SMTP -----------------------------------------------------------------------------------------


def relay(*faults: Fault | None, **replies: str) -> Mailbox:
    box = Mailbox(faults=Faults(), **replies)
    box.faults.push(*faults)
    return box


def mail_channel(port: int, timeout: float = 2.0, **options) -> SmtpChannel:
    return SmtpChannel(smtp(port, timeout=timeout, **options), unsubscribe())


SMTP_CASES = {
    "sent": ({}, [], {}, ("sent", "<n", None)),
    "MAIL 451": ({"mail_reply": "451 4.7.1 Greylisted, try again"}, [], {},
                 ("TemporaryFailure", "SMTP 451 4.7.1 Greylisted, try again", None)),
    "MAIL 553": ({"mail_reply": "553 5.7.1 Sender rejected"}, [], {},
                 ("PermanentFailure", "SMTP 553 5.7.1 Sender rejected", False)),
    "RCPT 452": ({"reply": "452 4.2.2 Mailbox full"}, [], {},
                 ("TemporaryFailure", "SMTP 452 4.2.2 Mailbox full", None)),
    "RCPT 550": ({"reply": "550 5.1.1 No such user"}, [], {},
                 ("PermanentFailure", "SMTP 550 5.1.1 No such user", False)),
    "DATA busy": ({}, [Fault("busy")], {},
                  ("TemporaryFailure", "SMTP 450 4.7.1 Too many messages, try again later", None)),
    "DATA error": ({}, [Fault("error")], {},
                   ("TemporaryFailure", "SMTP 451 4.3.0 Temporary failure, message not accepted",
                    None)),
    "late": ({}, [Fault("late", 1.0)], {"timeout": 0.3},
             ("UncertainSend", "SMTP: no reply after the message was sent (timed out)", None)),
    "drop": ({}, [Fault("drop")], {},
             ("UncertainSend", "SMTP: no reply after the message was sent (the relay closed the "
              "connection)", None)),
    "hang up": ({}, [Fault("reset")], {},
                ("TemporaryFailure", "SMTP: the relay closed the connection", None)),
    "slow": ({}, [Fault("slow", 0.3)], {}, ("sent", "<n", None)),
}  # fmt: skip


@pytest.mark.parametrize("case", SMTP_CASES)
def test_smtp_faults_end_the_same_on_both_paths(case):
    replies, faults, options, expected = SMTP_CASES[case]
    mailbox = relay(**replies)
    with smtp_server(mailbox) as port:
        for path in PATHS:
            mailbox.faults.push(*faults)
            assert outcome(mail_channel(port, **options), email(), path) == expected, path


def test_a_refused_smtp_connection_is_temporary_on_both_paths():
    port = free_port()
    said = "SMTP: ConnectionRefusedError: [Errno 111] Connection refused"
    for path in PATHS:
        assert outcome(mail_channel(port), email(), path) == ("TemporaryFailure", said, None)


def test_a_non_ascii_address_goes_with_smtputf8_and_the_same_bytes_on_both_paths():
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        for path in PATHS:
            message = email(recipient="zoë@example.com", subject="Café ☕")
            assert outcome(mail_channel(port), message, path)[0] == "sent", path
    sync, on_loop = mailbox.envelopes
    assert without_date(sync.content) == without_date(on_loop.content)
    assert sync.rcpt_tos == on_loop.rcpt_tos == ["zoë@example.com"]
    assert "SMTPUTF8" in sync.mail_options and sync.mail_options == on_loop.mail_options


def test_a_drop_before_data_is_temporary_on_both_paths():
    mailbox = Mailbox()

    async def hang_up(server, session, envelope, address, rcpt_options):
        server.transport.abort()
        return "250 OK"

    mailbox.handle_RCPT = hang_up
    with smtp_server(mailbox) as port:
        for path in PATHS:
            assert outcome(mail_channel(port), email(), path) == (
                "TemporaryFailure", "SMTP: the relay closed the connection", None
            )  # fmt: skip
    assert mailbox.messages == []


def without_date(content: bytes) -> bytes:
    """The message without its Date and MIME boundary (drawn at random for every message)."""
    content = re.sub(rb"\r?\nDate: [^\r\n]*", b"", content)
    return re.sub(rb"={15}[0-9]+==", b"BOUNDARY", content)


@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
def test_the_relay_receives_the_same_bytes_from_both_paths(tmp_path, security):
    tls = local_tls(tmp_path)
    mailbox = Mailbox()
    options: dict[str, Any] = {"security": security}
    secure: dict[str, Any] = {}
    if security != "none":
        secure = {"tls": tls, "implicit": security == "tls"}
        options |= {"ca_file": tls.ca_file}
    if security == "starttls":  # the test relay offers AUTH after STARTTLS only
        secure |= {"users": {"coach": "pw"}}
        options |= {"username": "coach", "password": "pw"}
    with smtp_server(mailbox, **secure) as port:
        for path in PATHS:
            channel = mail_channel(port, **options)
            assert (
                outcome(
                    channel,
                    email(
                        recipient="sam.ü@example.com"[:0] + "sam@example.com",
                        body="Hi\n.hidden dot\nbye",
                    ),
                    path,
                )[0]
                == "sent"
            )
    sync, on_loop = (without_date(e.content) for e in mailbox.envelopes)
    assert sync == on_loop and b"Message-ID: <nurture.7.hi@example.com>" in sync
    assert b"List-Unsubscribe: <mailto:" in sync and b"\n.hidden dot" in sync.replace(b"\r", b"")
    assert mailbox.envelopes[0].mail_options == mailbox.envelopes[1].mail_options
    assert mailbox.logins == (["coach", "coach"] if security == "starttls" else [])


def test_100_concurrent_emails_never_open_more_than_the_pool():
    mailbox = Mailbox(faults=Faults({Fault("slow", 0.02): 1.0}))
    with smtp_server(mailbox) as port:
        channel = mail_channel(port, connections=4)

        async def burst() -> None:
            messages = [
                email(recipient=f"lead{i}@example.com", key=f"{i}:hi:1") for i in range(100)
            ]
            await asyncio.gather(*(channel.send_async(m) for m in messages))
            await channel.aclose()

        run(burst)
    assert len(mailbox.messages) == 100 and channel.concurrency == 4
    assert 1 < mailbox.connections <= 4 and channel.opened == mailbox.connections


def test_a_pooled_connection_the_relay_closed_is_replaced_before_the_message_starts():
    mailbox = Mailbox()
    port = free_port()
    channel = mail_channel(port)

    async def across_a_restart() -> None:
        with ExitStack() as relay_up:
            await asyncio.to_thread(relay_up.enter_context, smtp_server(mailbox, port=port))
            await channel.send_async(email(key="1:hi:1"))
            await asyncio.to_thread(relay_up.close)  # hangs up on the pooled connection
        with ExitStack() as relay_up:
            await asyncio.to_thread(relay_up.enter_context, smtp_server(mailbox, port=port))
            await channel.send_async(email(recipient="kim@example.com", key="2:hi:1"))
            await channel.aclose()
            await asyncio.to_thread(relay_up.close)

    run(across_a_restart)
    assert [m["To"] for m in mailbox.messages] == ["sam@example.com", "kim@example.com"]
    assert channel.opened == 2
