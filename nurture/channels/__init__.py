"""Channels: where a message goes. A channel sends one message or raises a failure saying whether to retry.

channels = channels_for("outbox", store)
result = channels["sms"].send(message)

The protocol (messages, results, failures) is in nurture.channels.protocol, the factory in
nurture.channels.factory; both are re-exported here. The channels themselves import the
protocol module, never this package, so importing it is no cycle.
"""

from nurture.channels.factory import channels_for
from nurture.channels.protocol import (
    KINDS,
    LONGEST_RETRY_AFTER,
    Channel,
    Channels,
    OutgoingMessage,
    PermanentFailure,
    SendResult,
    TemporaryFailure,
    UncertainSend,
    is_transactional,
    shown_text,
)

__all__ = [
    "KINDS",
    "LONGEST_RETRY_AFTER",
    "Channel",
    "Channels",
    "OutgoingMessage",
    "PermanentFailure",
    "SendResult",
    "TemporaryFailure",
    "UncertainSend",
    "channels_for",
    "is_transactional",
    "shown_text",
]
