"""The configured providers, as `nurture channels` sees them: check each without sending a
message, or send one test message through one of them."""

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol, runtime_checkable

from nurture.channels import (
    KINDS,
    OutgoingMessage,
    PermanentFailure,
    SendResult,
    TemporaryFailure,
    UncertainSend,
)
from nurture.channels.config import ImapConfig, Providers
from nurture.channels.imap import ImapMailbox
from nurture.channels.live import EmailNotification, StoredOnly, Unconfigured, provider
from nurture.errors import ChannelError, NurtureError
from nurture.rules.contacts import ContactError, normalize_email, normalize_phone
from nurture.spec.actions import CONTENT_SID


@runtime_checkable
class Checkable(Protocol):
    """A provider's channel: it can log in (fetch the account) without sending."""

    def check(self) -> str: ...


@dataclass(frozen=True)
class Check:
    """One channel: configured or not, whether it works, and what was found."""

    channel: str
    configured: bool
    ok: bool
    detail: str


MAILBOX = "mailbox"
"""`nurture channels check mailbox`: the IMAP mailbox of leads' answers (not a sending channel)."""


def check(providers: Providers, names: list[str] | None = None) -> list[Check]:
    """Connect to each configured channel (log in, fetch the account) without sending."""
    return [check_one(providers, name) for name in _kinds(names)]


def check_one(providers: Providers, kind: str) -> Check:
    try:
        channel = provider(kind, providers)
    except NurtureError as error:
        return Check(kind, True, False, str(error))
    if isinstance(channel, Unconfigured):
        return Check(kind, False, False, f"not configured ({channel.what})")
    if isinstance(channel, StoredOnly):
        return Check(kind, False, True, "kept in the store only (no [notifications] provider)")
    inner = channel.smtp if isinstance(channel, EmailNotification) else channel
    if not isinstance(inner, Checkable):  # every provider's channel is
        return Check(kind, True, False, "cannot be checked without sending")
    try:
        found = inner.check()
    except (TemporaryFailure, PermanentFailure) as failure:
        return Check(kind, True, False, str(failure))
    return Check(kind, True, True, _with_rate(found, providers, kind))


def check_mailbox(config: ImapConfig | None) -> Check:
    """Log in to the mailbox of leads' answers and count its unseen emails (reads none)."""
    if config is None:
        return Check(MAILBOX, False, False, "not configured ([inbound_email.imap])")
    try:
        with ImapMailbox(config) as mailbox:
            waiting = len(mailbox.unseen_uids())
    except ChannelError as error:
        return Check(MAILBOX, True, False, str(error))
    where = f"{config.username} at {mailbox.where}, folder {config.folder}"
    return Check(MAILBOX, True, True, f"{where}: {waiting} unseen")


def _with_rate(found: str, providers: Providers, kind: str) -> str:
    rate = providers.rates.get(kind)
    return f"{found}; at most {rate:g} a second" if rate else found


def send_test(
    providers: Providers,
    kind: str,
    to: str,
    now: datetime,
    region: str | None = None,
    template: str | None = None,
) -> SendResult:
    """Send one real test message through `kind` to `to`; the provider's id."""
    [kind] = _kinds([kind])
    if kind != "notification" and not to.strip():
        raise NurtureError(f"--to: give the {_ADDRESSES[kind]} to send the test {kind} message to")
    if template and not re.match(CONTENT_SID, template):
        raise NurtureError(
            f"--template {template!r}: an approved template's SID is HX and 32 hex digits"
        )
    channel = provider(kind, providers)
    if isinstance(channel, StoredOnly):
        raise NurtureError(
            "no notification provider is configured (notifications are only stored): add "
            "[notifications] with slack_webhook_url, webhook_url or email_to"
        )
    stamp = f"{now:%Y-%m-%d %H:%M} UTC"
    message = OutgoingMessage(
        channel=kind,
        recipient=_address(kind, to, region),
        subject=f"nurture test message ({stamp})",
        body=f"This is a test message from nurture, sent {stamp}. It works!",
        key=f"test.{now:%Y%m%d%H%M%S}",
    )
    if template:
        message = replace(message, template={"content_sid": template, "variables": {}})
    if isinstance(channel, EmailNotification):
        channel = channel.smtp
    try:
        return channel.send(message)
    except (TemporaryFailure, PermanentFailure) as failure:
        raise NurtureError(f"the test {kind} message did not go: {failure}") from None
    except UncertainSend as failure:  # the provider may have it: look before sending another
        raise NurtureError(f"the test {kind} message may have gone: {failure}") from None


_ADDRESSES = {"email": "email address", "sms": "phone number", "whatsapp": "WhatsApp number"}


def _address(kind: str, to: str, region: str | None) -> str:
    try:
        if kind == "email":
            return normalize_email(to)
        return normalize_phone(to, region) if kind in ("sms", "whatsapp") else to
    except ContactError as error:
        raise NurtureError(f"--to: {error}") from None


def _kinds(names: list[str] | None) -> list[str]:
    for name in names or []:
        if name not in KINDS:
            raise NurtureError(f"unknown channel {name!r}: use one of {', '.join(KINDS)}")
    return list(names or KINDS)
