"""What a channel is: the message it sends, its result, the failures it raises, the Protocol."""

import asyncio
import weakref
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from nurture.errors import ChannelError

KINDS = ("whatsapp", "sms", "email", "notification")
Channels = Mapping[str, "Channel"]
"""One channel for each kind of message: whatsapp, sms, email, notification."""


@dataclass(frozen=True)
class Attachment:
    """A file an email carries (an invitation's .ics): its name, MIME type, text, parameters."""

    filename: str
    content_type: str
    data: str
    params: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered message; `key` (enrollment:step:attempt) lets a provider drop duplicates."""

    channel: str
    recipient: str
    body: str
    key: str
    subject: str | None = None
    html: str | None = None
    reply_to: str | None = None
    template: dict[str, Any] | None = None
    lead_id: int | None = None
    execution_id: int | None = None
    urgent: bool = False
    """A notification that must not wait: a Slack mention, email priority, the webhook's field."""
    link: str | None = None
    """A notification's link to the lead's page on the dashboard."""
    attachments: tuple[Attachment, ...] = ()


def shown_text(message: OutgoingMessage) -> str:
    """What a reader sees of the message: its body, or the template and its filled variables,
    `template HX... {{1}}=Ana, {{2}}=Tuesday` (a WhatsApp template has no body)."""
    if not message.template:
        return message.body
    variables = message.template.get("variables") or {}
    filled = ", ".join(f"{{{{{name}}}}}={value}" for name, value in variables.items())
    return f"template {message.template['content_sid']} {filled}".rstrip()


@dataclass(frozen=True)
class SendResult:
    """The provider's id for the message; `outbox` is a row the completion stores with the execution."""

    provider_id: str
    outbox: dict[str, Any] | None = field(default=None, compare=False)


class TemporaryFailure(ChannelError):
    """The send may succeed later (a timeout, a rate limit, a provider outage): retried with backoff.

    `retry_after` (seconds) is the provider's `Retry-After`: the retry waits at least that long.
    """

    def __init__(self, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = _bounded(retry_after)


LONGEST_RETRY_AFTER = 3600.0
"""A provider's Retry-After is honoured up to an hour: `inf` or `1e20` must not overflow the clock."""


def _bounded(seconds: float | None) -> float | None:
    if seconds is None or seconds != seconds:  # NaN: the backoff decides
        return None
    return min(max(seconds, 0.0), LONGEST_RETRY_AFTER)


class PermanentFailure(ChannelError):
    """The send cannot succeed (no address, invalid number, rejected content): never retried.

    `unsubscribed`: the provider says the recipient opted out with it (Twilio 21610); the
    completion opts the lead out of that channel.
    """

    def __init__(self, message: str = "", unsubscribed: bool = False) -> None:
        super().__init__(message)
        self.unsubscribed = unsubscribed


class UncertainSend(ChannelError):
    """The request may have reached the provider: a timeout or a dropped connection after it was
    written, or a reply lost after the provider took the message. Never retried blindly: the
    engine settles it (the channel's `settle`, where the provider can tell) or holds it for a
    decision (`nurture enrollments settle`)."""


class Channel(Protocol):
    """A channel sends; one that can ask its provider whether a message arrived also has

    `settle(message, sent_after) -> SendResult | None`: the provider's record of the message
    (it went out), None when the provider provably does not have it (safe to send again); it
    raises TemporaryFailure or UncertainSend when it cannot tell now.
    """

    def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message; raise TemporaryFailure or PermanentFailure when it does not go."""
        ...


async def deliver(channel: Channel, message: OutgoingMessage) -> SendResult:
    """Send on the running event loop: the channel's `send_async` when it has one (a channel
    doing its I/O on the loop, with the same failures as `send`), else its `send` in one of
    the loop's worker threads."""
    send_async = getattr(channel, "send_async", None)
    if send_async is not None:
        result: SendResult = await send_async(message)
        return result
    return await asyncio.get_running_loop().run_in_executor(None, channel.send, message)


async def close(channel: Channel) -> None:
    """Close what the channel opened on the event loop (its `aclose`, when it has one)."""
    aclose = getattr(channel, "aclose", None)
    if aclose is not None:
        await aclose()


class Closer:
    """Closes what a channel opened on the engine's event loop if the channel is dropped
    without its `aclose` (a finalizer): no connection is left for a ResourceWarning."""

    def __init__(self) -> None:
        self.finalizer: weakref.finalize | None = None

    def track(
        self,
        owner: object,
        loop: asyncio.AbstractEventLoop,
        close: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        """Run `close()` on `loop` (if it still runs) once `owner` is garbage collected;
        `close` must not hold `owner`. What was tracked before is let go."""

        def finish() -> None:
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(close(), loop)

        self.release()
        self.finalizer = weakref.finalize(owner, finish)

    def release(self) -> None:
        """Closed explicitly: nothing to do when the owner goes."""
        if self.finalizer is not None:
            self.finalizer.detach()
            self.finalizer = None


def concurrency(channel: Channel) -> int | None:
    """How many messages the channel takes at once (its `concurrency`, e.g. an SMTP relay's
    connections), or None: as many as the engine has in flight."""
    limit = getattr(channel, "concurrency", None)
    return int(limit) if limit else None


def is_transactional(channel: Channel) -> bool:
    """Whether the channel's sends take effect only with the completion's commit.

    Such a channel (the outbox) returns its row in the SendResult and does no I/O: nothing can
    have been sent if the daemon dies before the completion, so no `sending` record is written
    first and its sends run inline. An optional attribute: other channels need not declare it.
    """
    return bool(getattr(channel, "transactional", False))
