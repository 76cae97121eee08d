"""Uncertain sends settled by asking the provider, where the channel can tell (its `settle`).

The provider's answer decides the step:

- a SendResult: the message went out. The execution becomes `sent` with the provider's id
  (its detail says it was settled by a lookup) and the enrollment moves on.
- None: the provider provably does not have it. The step is retried as a new attempt.
- it cannot tell now (TemporaryFailure, UncertainSend, any error): held. The enrollment stays
  `unknown`; the daemon asks again later, and `nurture enrollments settle` decides in bulk.

The engine asks right after an uncertain send, for a crashed `sending` found at claim time, and
on a daemon tick for enrollments already unknown (dispatch.settle_unknown); the lookups run in
the event loop's worker threads (nurture.engine.delivery.pipeline).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from nurture.channels import Channel, Channels, OutgoingMessage, SendResult
from nurture.engine.actions import CHANNEL_OF
from nurture.engine.complete import Job
from nurture.engine.delivery.sends import describe

Settle = Callable[[OutgoingMessage, datetime], SendResult | None]
NOT_THERE = "the provider has no such message: sent again as a new attempt"


def settler(channel: Channel) -> Settle | None:
    """The channel's `settle`, when it has one."""
    return getattr(channel, "settle", None)


def action_types(channels: Channels) -> list[str]:
    """The action types whose channel can settle (what dispatch.settle_unknown claims)."""
    return sorted(str(kind) for kind, name in CHANNEL_OF.items() if _can(channels, name))


def can_settle(job: Job, channels: Channels) -> bool:
    """Whether the job's send is uncertain and its channel can ask the provider about it."""
    return job.status == "unknown" and job.message is not None and _can(channels, job.channel)


def settle(job: Job, channels: Channels) -> None:
    """Settle one uncertain send by the provider's answer."""
    try:
        message, check, after = job.message, settler(channels[job.channel or ""]), job.sent_after
        assert message is not None and check is not None and after is not None, "see can_settle"
        found = check(message, after)
    except Exception as error:  # it cannot tell now (or the lookup failed): held
        job.note(settle=f"the provider could not tell: {describe(error)}")
        return
    if found is None:
        job.status, job.error = "retry", NOT_THERE
        job.note(settled="not at the provider")
    else:
        job.status, job.error, job.provider_id = "sent", None, found.provider_id
        job.note(settled="found at the provider by a lookup")


def _can(channels: Channels, name: str | None) -> bool:
    channel: Any = channels.get(name) if name is not None else None
    return channel is not None and settler(channel) is not None
