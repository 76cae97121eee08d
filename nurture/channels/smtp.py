"""Email over SMTP: multipart text and HTML, a signed unsubscribe link, one Message-ID per step.

The channel speaks MAIL, RCPT and DATA itself to know how far a message got. Until the end of
its text is written, nothing was accepted: a refused connection, a drop, a timeout or a 4xx
reply is a temporary failure (retried), a 5xx reply (an unknown mailbox, a rejected message, a
failed login) permanent. Once the end of the text is written, the relay may have taken the
message: a timeout or a dropped connection while waiting for its reply is UncertainSend (never
retried blindly; SMTP has no way to ask, so the engine holds it for a decision). The Message-ID
is the same for every attempt of a step, so a mail client drops a copy sent again.
"""

import asyncio
import html
import io
import re
import smtplib
import ssl
import threading
import weakref
from collections.abc import Callable
from email import policy
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from functools import partial
from typing import cast

import aiosmtplib

from nurture.channels import unsubscribe as links
from nurture.channels.config import SmtpConfig, UnsubscribeConfig
from nurture.channels.protocol import (
    Closer,
    OutgoingMessage,
    SendResult,
    UncertainSend,
)
from nurture.channels.smtp_answers import classified, words
from nurture.channels.smtp_pool import Kept, Pool, close_all
from nurture.errors import ConfigError

HEADERS = policy.default.clone(max_line_length=998)
"""Long headers stay plain: List-Unsubscribe must not become an RFC 2047 encoded word."""


class SmtpChannel:
    """Email over SMTP: each sender thread keeps its own logged-in connection for
    `messages_per_connection` messages, so a burst pays the TCP, TLS and login round trips once
    per connection instead of once per message. A failed send closes its connection."""

    def __init__(self, config: SmtpConfig, unsubscribe: UnsubscribeConfig | None) -> None:
        if unsubscribe is not None and unsubscribe.secret is None:
            raise ConfigError(
                "email needs an unsubscribe secret: set NURTURE_UNSUBSCRIBE__SECRET in .env"
            )
        self.config, self.unsubscribe = config, unsubscribe
        self.concurrency = config.connections  # send_async's connections, its messages in flight
        self.tls = ssl.create_default_context(cafile=config.ca_file)
        self.pool: Pool | None = None  # send_async's, on the loop that made it
        self.closer = Closer()
        self.local = threading.local()
        self.opened = 0  # connections opened, for tests and benchmarks
        self.open: set[smtplib.SMTP] = set()  # every thread's, to close them all at the end
        self.finalizer = weakref.finalize(self, _close_all, self.open)

    def send(self, message: OutgoingMessage) -> SendResult:
        email = self.compose(message)
        with classified():
            smtp = self._connection()
            try:
                transmit(smtp, self.config.from_address, message.recipient, email)
            except BaseException:
                self._drop()
                raise
            self.local.sent += 1
            if self.local.sent >= self.config.messages_per_connection:
                self._drop(polite=True)
        return SendResult(email["Message-ID"])

    async def send_async(self, message: OutgoingMessage) -> SendResult:
        """`send` on the running event loop, over a pool of up to `connections` connections.

        A kept connection found broken before the message started (MAIL, RCPT, DATA unanswered)
        is dropped and the message sent once more on a new one."""
        email, pool = self.compose(message), self._pool()
        with classified():
            kept = await pool.take()
            try:
                await transmit_async(kept.smtp, self.config.from_address, message.recipient, email)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError):
                pool.give(kept, healthy=False)
                if not kept.sent:  # a new connection failing is the relay's answer
                    raise
                kept = await pool.take(new=True)
                await self._once_more(pool, kept, message.recipient, email)
            except BaseException:
                pool.give(kept, healthy=False)
                raise
            await pool.done(kept)
        return SendResult(email["Message-ID"])

    async def _once_more(self, pool: Pool, kept: Kept, recipient: str, email: EmailMessage) -> None:
        try:
            await transmit_async(kept.smtp, self.config.from_address, recipient, email)
        except BaseException:
            pool.give(kept, healthy=False)
            raise

    def _pool(self) -> Pool:
        """send_async's pool, made on the running loop (again if the loop changed)."""
        loop = asyncio.get_running_loop()
        if self.pool is None or self.pool.loop is not loop:
            if self.pool is not None:
                self.pool.abandon()
            config = self.config
            self.pool = Pool(self.connect_async, config.connections, config.messages_per_connection)
            self.closer.track(self, loop, partial(close_all, self.pool.idle))
        return self.pool

    async def aclose(self) -> None:
        """Close send_async's connections (with QUIT), on the loop that opened them."""
        pool, self.pool = self.pool, None
        self.closer.release()
        if pool is not None:
            await pool.aclose()

    async def connect_async(self) -> aiosmtplib.SMTP:
        """A connection secured and logged in as `connect` does, on the running loop."""
        config = self.config
        smtp = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.effective_port,
            timeout=config.timeout,
            use_tls=config.security == "tls",
            start_tls=False,
            tls_context=self.tls,
        )
        await smtp.connect()
        try:
            await smtp.ehlo()
            if config.security == "starttls":
                await smtp.starttls()
                await smtp.ehlo()
            if config.username:
                password = config.password.get_secret_value() if config.password else ""
                await smtp.login(config.username, password)
        except BaseException:
            smtp.close()
            raise
        self.opened += 1
        return smtp

    def _connection(self) -> smtplib.SMTP:
        """This thread's open connection, or a new one. A kept connection is probed with NOOP
        first (one round trip instead of the seven of connecting, TLS and login): a relay may
        have closed it, and a message must not start over a dead connection."""
        local = self.local
        smtp = getattr(local, "smtp", None)
        if smtp is not None:
            try:
                alive = smtp.noop()[0] == 250
            except (smtplib.SMTPException, OSError):
                alive = False
            if not alive:
                self._drop()
                smtp = None
        if smtp is None:
            smtp = self.connect()
            self.opened += 1
            self.open.add(smtp)
            local.smtp, local.sent = smtp, 0
        return smtp

    def _drop(self, polite: bool = False) -> None:
        """Close this thread's connection (with QUIT when it is healthy)."""
        smtp, self.local.smtp = getattr(self.local, "smtp", None), None
        if smtp is not None:
            self.open.discard(smtp)
            _close(smtp, polite)

    def close(self) -> None:
        """Close every sender's connection (also done when the channel is collected)."""
        self.finalizer()

    def check(self) -> str:
        """Connect, secure and log in without sending; what worked."""
        with classified(), self.connect() as smtp:
            smtp.noop()
        config = self.config
        login = f", logged in as {config.username}" if config.username else ""
        return f"{config.host}:{config.effective_port} ({config.security}){login}"

    def connect(self) -> smtplib.SMTP:
        config = self.config
        host, port, timeout = config.host, config.effective_port, config.timeout
        context = self.tls
        if config.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        try:
            if config.security == "starttls":
                smtp.starttls(context=context)
            if config.username:
                password = config.password.get_secret_value() if config.password else ""
                smtp.login(config.username, password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def compose(self, message: OutgoingMessage) -> EmailMessage:
        """The message as it goes out: headers, the text part and the HTML alternative."""
        config = self.config
        email = EmailMessage(policy=HEADERS)
        email["From"] = formataddr((config.from_name or "", config.from_address))
        email["To"] = message.recipient
        email["Subject"] = message.subject or ""
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = message_id(message.key, config.from_address)
        reply_to = message.reply_to or config.reply_to
        if reply_to:
            email["Reply-To"] = reply_to
        if message.urgent:  # Outlook reads Importance, most others X-Priority
            email["Importance"], email["X-Priority"] = "high", "1 (Highest)"
        text, markup = message.body, message.html or _html_of(message.body)
        if self.unsubscribe is not None and message.lead_id is not None:
            text, markup = self._add_unsubscribe(email, message.lead_id, text, markup)
        email.set_content(text)
        email.add_alternative(markup, subtype="html")
        for attached in message.attachments:
            maintype, _, subtype = attached.content_type.partition("/")
            assert maintype == "text", "attachments are text (an invitation's .ics)"
            email.add_attachment(
                attached.data, subtype=subtype, filename=attached.filename, params=attached.params
            )
        return email

    def _add_unsubscribe(
        self, email: EmailMessage, lead_id: int, text: str, markup: str
    ) -> tuple[str, str]:
        settings = self.unsubscribe
        if settings is None or settings.secret is None:  # __init__ refuses one without a secret
            return text, markup
        token = links.make_token(settings.secret.get_secret_value(), lead_id, "email")
        mailto = settings.mailto or self.config.reply_to or self.config.from_address
        url = links.link(settings.url, mailto, token)
        email["List-Unsubscribe"] = links.list_unsubscribe(settings.url, mailto, token)
        if settings.url:
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return _with_link(text, url, url), _with_link(markup, html.escape(url), _footer(url))


def _close(smtp: smtplib.SMTP, polite: bool = False) -> None:
    try:
        smtp.quit() if polite else smtp.close()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _close_all(connections: set[smtplib.SMTP]) -> None:
    while connections:
        _close(connections.pop(), polite=True)


def message_id(key: str, from_address: str) -> str:
    """`<nurture.ENROLLMENT.STEP@domain>`: every attempt of a step has the same id (the key's
    attempt is dropped), so a copy sent again is a duplicate to mail clients."""
    domain = Address(addr_spec=from_address).domain or "nurture.invalid"
    step = key.rpartition(":")[0] or key
    return f"<nurture.{re.sub(r'[^A-Za-z0-9_-]+', '.', step)}@{domain}>"


def transmit(smtp: smtplib.SMTP, sender: str, recipient: str, email: EmailMessage) -> None:
    """MAIL, RCPT and DATA for one message; UncertainSend when the reply to its end is lost."""
    smtp.ehlo_or_helo_if_needed()
    data, options = envelope(email, sender, recipient, smtp.has_extn)
    _expect(smtp.mail(sender, options), (250,), smtplib.SMTPSenderRefused, sender)
    _expect(smtp.rcpt(recipient), (250, 251), smtplib.SMTPDataError)
    _expect(smtp.docmd("DATA"), (354,), smtplib.SMTPDataError)
    smtp.send(_dot_stuffed(data))  # a failure here leaves the message unfinished: temporary
    try:
        reply = smtp.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as error:
        raise UncertainSend(f"SMTP: no reply after the message was sent ({words(error)})") from None
    _expect(reply, (250,), smtplib.SMTPDataError)


async def transmit_async(
    smtp: aiosmtplib.SMTP, sender: str, recipient: str, email: EmailMessage
) -> None:
    """`transmit` with aiosmtplib: the same commands, bytes and failures."""
    data, options = envelope(email, sender, recipient, smtp.supports_extension)
    encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
    await smtp.mail(sender, options=options, encoding=encoding)
    await smtp.rcpt(recipient, encoding=encoding)
    started = await smtp.execute_command(b"DATA")
    if started.code != 354:
        raise aiosmtplib.SMTPDataError(started.code, started.message)
    protocol = smtp.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    protocol.write(_dot_stuffed(data))  # a failure here leaves the message unfinished
    try:
        reply = await protocol.read_response(timeout=smtp.timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as error:
        smtp.close()
        raise UncertainSend(f"SMTP: no reply after the message was sent ({words(error)})") from None
    if reply.code != 250:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)


def envelope(
    email: EmailMessage, sender: str, recipient: str, has: Callable[[str], bool]
) -> tuple[bytes, list[str]]:
    """The message's bytes and MAIL options (`has`: the relay offers an extension): SMTPUTF8
    when an address is not ASCII, SIZE when the relay takes it."""
    options: list[str] = []
    generating = email.policy
    if not f"{sender}{recipient}".isascii():
        if not has("smtputf8"):
            raise smtplib.SMTPNotSupportedError("the relay does not take non-ASCII addresses")
        # built with HEADERS, an EmailPolicy (typeshed types a message's policy as the base's)
        built = cast(policy.EmailPolicy, email.policy)
        generating, options = built.clone(utf8=True), ["SMTPUTF8", "BODY=8BITMIME"]
    with io.BytesIO() as out:
        BytesGenerator(out, policy=generating).flatten(email, linesep="\r\n")
        data = out.getvalue()
    return data, options + ([f"SIZE={len(data)}"] if has("size") else [])


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA text: a line starting with a dot gets another, then the ending `.` line."""
    stuffed = re.sub(rb"(?m)^\.", b"..", data)
    return stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n"


def _expect(reply: tuple[int, bytes], codes: tuple[int, ...], error: type, *args: str) -> None:
    code, text = reply
    if code not in codes:
        raise error(code, text, *args)


def _with_link(body: str, replacement: str, footer: str) -> str:
    """The template's `{{ unsubscribe_url }}` replaced, or the link added at the end."""
    if links.PLACEHOLDER in body:
        return body.replace(links.PLACEHOLDER, replacement)
    if footer.startswith("<"):
        close = body.lower().rfind("</body>")
        return body[:close] + footer + body[close:] if close >= 0 else body + footer
    return f"{body.rstrip()}\n\n--\nUnsubscribe: {footer}\n"


def _footer(url: str) -> str:
    return f'<p style="font-size:small"><a href="{html.escape(url)}">Unsubscribe</a></p>'


def _html_of(text: str) -> str:
    """An HTML alternative for a text-only email: escaped paragraphs."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
