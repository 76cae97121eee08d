"""Bounce reports read: delivery status notifications (RFC 3464) one by one, from a message, an
mbox or a maildir, with the `email` standard library.

    for report in read_path(Path("bounces.mbox")): ...

A report names the message that bounced (the Message-ID of the original, from its returned
headers) and, per recipient, the action (failed, delayed...), the status code (`5.1.1`) and
the remote server's diagnostic. A status of class 5 is permanent: a hard bounce.
"""

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path


@dataclass(frozen=True)
class Bounce:
    """One recipient of one message that could not be delivered."""

    recipient: str | None
    message_id: str | None
    action: str
    status: str
    diagnostic: str | None = None

    @property
    def hard(self) -> bool:
        """A permanent failure (status 5.x.x): the address will not take mail."""
        return self.action == "failed" and self.status.startswith("5")


@dataclass(frozen=True)
class Report:
    """What one message of a mailbox turned out to be: its bounces, or why it has none."""

    subject: str
    bounces: tuple[Bounce, ...] = ()
    problem: str | None = None


def read_path(path: Path) -> Iterator[Report]:
    """Every message of a maildir (a folder), an mbox (a file of `From ` lines) or one message."""
    if path.is_dir():
        yield from (read_message(m) for m in mailbox.Maildir(path, create=False))
        return
    yield from read_bytes(path.read_bytes(), path)


def read_bytes(data: bytes, path: Path | None = None) -> Iterator[Report]:
    """Every message of a text: an mbox when it starts with a `From ` line, else one message."""
    if data.startswith(b"From ") and path is not None:
        box = mailbox.mbox(path, create=False)
        try:
            yield from (read_message(m) for m in box)
        finally:
            box.close()
    elif data.startswith(b"From "):
        for chunk in _mbox_messages(data):
            yield read_message(message_from_bytes(chunk, policy=policy.compat32))
    else:
        yield read_message(message_from_bytes(data, policy=policy.compat32))


def _mbox_messages(data: bytes) -> Iterator[bytes]:
    """The messages of an mbox read from a pipe (`From ` lines start each)."""
    current: list[bytes] = []
    for line in data.splitlines(keepends=True):
        if line.startswith(b"From ") and current:
            yield b"".join(current)
            current = []
        elif not line.startswith(b"From ") or current:
            current.append(line[1:] if line.startswith(b">From ") else line)
    if current:
        yield b"".join(current)


def read_message(message: Message) -> Report:
    """The bounces of one message (a DSN), or why it is not one."""
    subject = str(message.get("Subject", ""))
    status = _part(message, "message/delivery-status")
    if status is None:
        return Report(subject, problem="not a delivery status notification (RFC 3464)")
    original = _original_id(message)
    fields = status.get_payload()
    recipients = (
        [p for p in fields[1:] if isinstance(p, Message)] if isinstance(fields, list) else []
    )
    bounces = tuple(_bounce(part, original) for part in recipients if part.get("Action"))
    if not bounces:
        return Report(subject, problem="the report names no recipient")
    return Report(subject, bounces)


def _part(message: Message, content_type: str) -> Message | None:
    return next((p for p in message.walk() if p.get_content_type() == content_type), None)


def _original_id(message: Message) -> str | None:
    """The Message-ID of the message that bounced, from the headers the report returns."""
    returned = _part(message, "message/rfc822")
    headers: Message | None = None
    if returned is not None:
        inner = returned.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            headers = inner[0]
    else:
        text = _part(message, "text/rfc822-headers")
        payload = text.get_payload(decode=True) if text is not None else None
        if isinstance(payload, bytes):
            headers = HeaderParser().parsestr(payload.decode("utf-8", "replace"))
    found = headers.get("Message-ID") if headers is not None else None
    return str(found).strip() if found else None


def _bounce(fields: Message, original: str | None) -> Bounce:
    recipient = _address(fields.get("Final-Recipient") or fields.get("Original-Recipient"))
    diagnostic = fields.get("Diagnostic-Code")
    if diagnostic:
        diagnostic = " ".join(str(diagnostic).partition(";")[2].split()) or str(diagnostic)
    return Bounce(
        recipient,
        original,
        str(fields.get("Action", "")).strip().lower(),
        str(fields.get("Status", "")).strip(),
        diagnostic,
    )


def _address(field: object) -> str | None:
    """`rfc822; ana@example.com` gives `ana@example.com`."""
    if not field:
        return None
    kind, _, address = str(field).partition(";")
    return (address or kind).strip().strip("<>") or None
