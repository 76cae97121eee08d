"""Per-channel rate limits: messages leave at most `rate` a second, evenly spaced.

Each send waits for its slot, so the senders of a batch spread a burst instead of getting the
account blocked; the due steps not yet claimed wait in the store, where `nurture status` shows
them as lag. A provider's `Retry-After` pauses the whole channel, not just the one message.
"""

import threading
import time
from collections.abc import Callable, Mapping

from nurture.channels import Channel, OutgoingMessage, SendResult, TemporaryFailure

LONGEST_PAUSE = 60.0
"""A provider asking for a longer pause gets it through the retry of that one step instead."""


class RateLimiter:
    """Slots `1 / rate` seconds apart, shared by every thread that sends on the channel."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self.clock, self.sleep = clock, sleep
        self.next_slot = 0.0
        self.lock = threading.Lock()

    def wait(self) -> float:
        """Block until this caller's slot; how long it waited."""
        with self.lock:
            now = self.clock()
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.interval
        if slot > now:
            self.sleep(slot - now)
        return slot - now

    def pause(self, seconds: float) -> None:
        """No slot before `seconds` from now (a 429's Retry-After)."""
        with self.lock:
            self.next_slot = max(self.next_slot, self.clock() + min(seconds, LONGEST_PAUSE))


class RateLimited:
    """A channel whose sends wait for the limiter."""

    def __init__(self, channel: Channel, limiter: RateLimiter) -> None:
        self.channel, self.limiter = channel, limiter

    def send(self, message: OutgoingMessage) -> SendResult:
        self.limiter.wait()
        try:
            return self.channel.send(message)
        except TemporaryFailure as failure:
            if failure.retry_after:
                self.limiter.pause(failure.retry_after)
            raise


def limited(channels: Mapping[str, Channel], rates: Mapping[str, float]) -> dict[str, Channel]:
    """Each kind of message through its channel, behind its own limiter where it has a rate."""
    return {
        kind: RateLimited(channel, RateLimiter(rates[kind])) if rates.get(kind) else channel
        for kind, channel in channels.items()
    }


BATCH_SECONDS = 10.0
"""A batch holds about this many seconds of sends at the slowest rate: the rest of a burst
waits in the store (where `nurture status` shows it as lag), and leases stay short."""


def batch_within(batch: int, rates: Mapping[str, float], lease_seconds: float) -> int:
    """The batch size whose sends take at most BATCH_SECONDS (and half a lease) at the slowest
    rate; at least 1."""
    if not rates:
        return batch
    fits = int(min(rates.values()) * min(BATCH_SECONDS, lease_seconds / 2))
    return max(1, min(batch, fits))
