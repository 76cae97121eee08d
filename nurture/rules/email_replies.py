"""A lead's answer by email read from the raw message (RFC 822): who wrote, which of our
messages it answers, what they said, and whether it is an answer at all.

    reply = read_email(raw_bytes)
    reply.kind        # reply, auto (an out-of-office or other automatic answer), bounce
    reply.answers     # the Message-IDs it answers: In-Reply-To first, then References, newest first
    reply.text        # what the person wrote: quoted text and signature cut

An automatic answer is told by its headers (RFC 3834's Auto-Submitted, X-Autoreply,
X-Autorespond, Precedence: bulk, auto_reply, junk or list, an empty Return-Path); a bounce by
its delivery status report (RFC 3464) or its sender (MAILER-DAEMON, postmaster). Neither is a
reply. The quoted text is cut at the first line of a known quote (`> ...`, `On ... wrote:` and
its French, German, Spanish, Dutch and Portuguese forms, Outlook's `-----Original Message-----`
or its `From: ... Sent: ...` block, a line of underscores), the signature at `-- ` and the
phone mail apps' `Sent from my ...`.
"""

import html
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses
from typing import Any, Literal

from nurture.errors import NurtureError
from nurture.rules.bounces import Report, read_message

Kind = Literal["reply", "auto", "bounce"]
AUTO_PRECEDENCE = frozenset({"bulk", "auto_reply", "junk", "list"})
AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder")
BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster"})
LONGEST = 10_000
"""The longest reply text kept (a pasted novel is cut here)."""

_IDS = re.compile(r"<[^<>\s]+>")
_QUOTE_HEADS = re.compile(
    r"^(on\s.+\swrote:"
    r"|le\s.+\sa\s+écrit\s*:"
    r"|am\s.+\sschrieb\s.*:"
    r"|el\s.+\sescribió:"
    r"|op\s.+\sschreef\s.*:"
    r"|em\s.+\sescreveu:"
    r"|-{2,}\s*original message\s*-{2,}"
    r"|-{2,}\s*forwarded message\s*-{2,}"
    r"|_{10,})\s*$",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(
    r"^(--\s?|sent from my\s.+|get outlook for\s.+|sent from (mail|outlook) for\s.+)$",
    re.IGNORECASE,
)
_OUTLOOK_HEADER = re.compile(r"^\*?(from|de|von|van):\*?\s", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^\*?(sent|date|to|envoyé|gesendet|verzonden):\*?\s", re.IGNORECASE)


@dataclass(frozen=True)
class EmailReply:
    """What a received email is: its sender, the messages it answers, its text, its kind."""

    kind: Kind
    sender: str | None
    subject: str
    message_id: str | None
    answers: tuple[str, ...] = ()
    text: str = ""
    why: str | None = None
    """For an automatic answer or a bounce: what told it apart (a header, the report)."""
    report: Report | None = None
    """A bounce's delivery status report, for the bounce handling."""


def read_email(data: bytes) -> EmailReply:
    """The received email's reply, automatic answer or bounce; NurtureError when the bytes are
    not an email (no headers, no sender)."""
    if not data.strip():
        raise NurtureError("the email is empty: give the raw message (RFC 822) as received")
    message = message_from_bytes(data, policy=policy.default)
    if not message.keys() or message.defects and not message.get("From"):
        raise NurtureError("not an email: the text has no headers (give the raw RFC 822 message)")
    sender = _sender(message)
    subject = " ".join(str(message.get("Subject", "")).split())
    ids = _ids(message.get("Message-ID"))
    base: dict[str, Any] = {
        "sender": sender,
        "subject": subject,
        "message_id": ids[0] if ids else None,
    }
    bounce = _bounce(data, message, sender)
    if bounce is not None:
        said, report = bounce
        return EmailReply("bounce", why=said, report=report, **base)
    if (why := _automatic(message)) is not None:
        return EmailReply("auto", why=why, **base)
    if sender is None:
        raise NurtureError("the email has no sender: its From header names no address")
    answers = _ids(message.get("In-Reply-To"))
    answers += [i for i in reversed(_ids(message.get("References"))) if i not in answers]
    return EmailReply("reply", answers=tuple(answers), text=_said(message), **base)


def _sender(message: EmailMessage) -> str | None:
    try:
        found = [address for _, address in getaddresses([str(message.get("From", ""))])]
    except (ValueError, IndexError):  # a From header the parser cannot read
        return None
    return next((address for address in found if "@" in address), None)


def _ids(header: object) -> list[str]:
    return _IDS.findall(str(header)) if header else []


def _bounce(data: bytes, message: EmailMessage, sender: str | None) -> tuple[str, Report] | None:
    """Why the email is a bounce, and its report; None when it is not one."""
    report = read_message(message_from_bytes(data, policy=policy.compat32))
    if report.bounces:
        return "a delivery status notification (RFC 3464)", report
    if message.get_content_type() == "multipart/report":
        return "a delivery report (multipart/report)", report
    local = (sender or "").partition("@")[0].lower()
    if local in BOUNCE_SENDERS:
        return f"sent by {local}: a mail server's report", report
    return None


def _automatic(message: Message) -> str | None:
    """The header that says the email was written by a program, not a person; None if none."""
    submitted = str(message.get("Auto-Submitted", "")).split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    for name in AUTO_HEADERS:
        value = str(message.get(name, "")).strip()
        if value and value.lower() not in ("no", "false", "0"):
            return f"{name}: {value}"[:100]
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence in AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    if "Return-Path" in message and str(message["Return-Path"]).strip() == "<>":
        return "an empty Return-Path (an automatic message)"
    return None


def _said(message: EmailMessage) -> str:
    """The text the person wrote: the plain part (else the HTML one as text), quotes cut."""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, ValueError, AttributeError):  # an unknown charset, a broken encoding
        payload = body.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if body.get_content_type() == "text/html":
        content = text_of_html(content)
    return strip_quoted(content)[:LONGEST]


def strip_quoted(text: str) -> str:
    """The text above the quoted message and the signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        bare = line.strip()
        joined = f"{bare} {lines[index + 1].strip()}" if index + 1 < len(lines) else bare
        if (
            bare.startswith(">")
            or _QUOTE_HEADS.match(bare)
            or _QUOTE_HEADS.match(joined)  # `On ..., Sam <sam@example.com>` + `wrote:`
            or _SIGNATURE.match(line.rstrip())
            or (_OUTLOOK_HEADER.match(bare) and _outlook_block(lines[index + 1 : index + 4]))
        ):
            break
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def _outlook_block(following: list[str]) -> bool:
    return any(_OUTLOOK_NEXT.match(line.strip()) for line in following)


_DROPPED = re.compile(
    r"<(style|script|head)\b.*?</\1\s*>|<blockquote\b.*?</blockquote\s*>"
    r"|<div[^>]*class=\"?[^\">]*(gmail_quote|moz-cite-prefix)[^>]*>.*",
    re.IGNORECASE | re.DOTALL,
)
_BREAKS = re.compile(r"<br\s*/?>|</(p|div|li|tr|h[1-6])\s*>", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")


def text_of_html(markup: str) -> str:
    """An HTML reply as text: its quoted blocks (blockquote, Gmail's and Thunderbird's) left out."""
    text = _BREAKS.sub("\n", _DROPPED.sub("", markup))
    text = html.unescape(_TAGS.sub("", text))
    return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()
