"""The live channels: each kind of message through the provider configured for it.

A kind without a provider fails its steps permanently with a message saying what to configure;
a notification without one is kept in the store only (the notification row is the message).
"""

import asyncio
from contextlib import suppress
from dataclasses import replace

from nurture.channels.config import Providers
from nurture.channels.protocol import (
    Channel,
    OutgoingMessage,
    PermanentFailure,
    SendResult,
    close,
    concurrency,
    deliver,
)


class Unconfigured:
    def __init__(self, kind: str, what: str) -> None:
        self.kind, self.what = kind, what

    def send(self, message: OutgoingMessage) -> SendResult:
        raise PermanentFailure(f"no {self.kind} channel configured: {self.what} in nurture.toml")


class StoredOnly:
    """Notifications without a provider: the engine's notification row is the notification."""

    def send(self, message: OutgoingMessage) -> SendResult:
        return SendResult(f"stored-{message.key}")


class EmailNotification:
    """Notifications mailed to the coach through the [email] relay (no unsubscribe link)."""

    def __init__(self, smtp: Channel, to: str) -> None:
        self.smtp, self.to = smtp, to
        self.concurrency = concurrency(smtp)
        if hasattr(smtp, "send_async"):
            self.send_async = self._send_async

    def send(self, message: OutgoingMessage) -> SendResult:
        return self.smtp.send(self._to_coach(message))

    async def _send_async(self, message: OutgoingMessage) -> SendResult:
        return await deliver(self.smtp, self._to_coach(message))

    def _to_coach(self, message: OutgoingMessage) -> OutgoingMessage:
        subject = message.subject or f"nurture: {message.body.splitlines()[0][:60]}"
        body = f"{message.body}\n\n{message.link}" if message.link else message.body
        return replace(message, recipient=self.to, subject=subject, body=body, lead_id=None)

    async def aclose(self) -> None:
        await close(self.smtp)


def build(providers: Providers) -> dict[str, Channel]:
    """One channel per kind of message (whatsapp, sms, email, notification)."""
    channels = {kind: provider(kind, providers) for kind in ("whatsapp", "sms", "email")}
    notify = notification_channel(providers)
    config = providers.notifications
    if config is not None and config.alert_on_failure and not isinstance(notify, StoredOnly):
        channels = {
            kind: channel if isinstance(channel, Unconfigured) else Alerting(channel, notify)
            for kind, channel in channels.items()
        }
    return channels | {"notification": notify}


class Alerting:
    """A lead's channel that tells the coach when a provider refuses a message for good."""

    def __init__(self, channel: Channel, notify: Channel) -> None:
        self.channel, self.notify = channel, notify
        if hasattr(channel, "settle"):
            self.settle = channel.settle  # a lookup, nothing to alert about
        if hasattr(channel, "send_async"):
            self.send_async = self._send_async
        self.concurrency = concurrency(channel)

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            return self.channel.send(message)
        except PermanentFailure as failure:
            self._alert(message, failure)
            raise

    async def _send_async(self, message: OutgoingMessage) -> SendResult:
        try:
            return await deliver(self.channel, message)
        except PermanentFailure as failure:
            await asyncio.get_running_loop().run_in_executor(None, self._alert, message, failure)
            raise

    async def aclose(self) -> None:
        await close(self.channel)

    def _alert(self, message: OutgoingMessage, failure: PermanentFailure) -> None:
        alert = OutgoingMessage(
            channel="notification",
            recipient="coach",
            subject=f"nurture: a {message.channel} message failed",
            body=f"{message.channel} to {message.recipient} failed for good: {failure} "
            f"(lead {message.lead_id}, execution {message.key})",
            key=f"alert.{message.key}",
            lead_id=message.lead_id,
            execution_id=message.execution_id,  # the failed step's, for the receiver to look up
        )
        # The step's own failure is in the log; the alert is a courtesy that must not fail it.
        with suppress(Exception):
            self.notify.send(alert)


def provider(kind: str, providers: Providers) -> Channel:
    """The channel that sends `kind`; ConfigError when its configuration is incomplete."""
    from nurture.channels.smtp import SmtpChannel
    from nurture.channels.twilio import TwilioChannel

    if kind == "notification":
        return notification_channel(providers)
    if kind == "email":
        email = providers.email
        return (
            SmtpChannel(email, providers.unsubscribe)
            if email
            else Unconfigured(kind, "add [email]")
        )
    twilio, sender = providers.twilio, f"{kind}_from"
    if twilio and (getattr(twilio, sender) or twilio.messaging_service_sid):
        return TwilioChannel(twilio, "sms" if kind == "sms" else "whatsapp")  # what is left
    return Unconfigured(kind, f"add [twilio] with {sender} or messaging_service_sid")


def notification_channel(providers: Providers) -> Channel:
    """Slack, else the JSON webhook, else email to the coach, else the store only."""
    from nurture.channels.slack import SlackChannel
    from nurture.channels.smtp import SmtpChannel
    from nurture.channels.webhook import WebhookChannel

    config = providers.notifications
    if config is None:
        return StoredOnly()
    if config.slack_webhook_url:
        return SlackChannel(config)
    if config.webhook_url:
        return WebhookChannel(config)
    if config.email_to and providers.email:
        return EmailNotification(SmtpChannel(providers.email, None), config.email_to)
    return StoredOnly()
