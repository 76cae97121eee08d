"""Per-channel rate limits: messages leave at most `rate` a second, evenly spaced.

Each send waits for its slot, so the senders of a batch spread a burst instead of getting the
account blocked; the due steps not yet claimed wait in the store, where `nurture status` shows
them as lag. A provider's `Retry-After` pauses the whole channel, not just the one message, and
does so for every channel, named in [rate_limits] or not (PauseOnly keeps the pause of a channel
without a rate).

With a store (`nurture run`) the slots are reserved in it (SharedRateLimiter), so every daemon
on the store keeps to one rate together; without one (a channel built for a single call or
test) they are kept in the process (RateLimiter).
"""

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Protocol

from nurture.channels.protocol import (
    Channel,
    OutgoingMessage,
    SendResult,
    TemporaryFailure,
    close,
    concurrency,
    deliver,
    is_transactional,
)
from nurture.store import slots
from nurture.store.db import STORE_ERRORS, Store

RATE_WINDOW = 0.5
"""A rate-limited channel has at most this many seconds of its messages in flight: each is
recorded at most about that long before its slot, and a provider answering within it still
gets the whole rate."""
LONGEST_PAUSE = 60.0
"""A provider asking for a longer pause gets it through the retry of that one step instead."""
PAUSE_CHECK = 1.0
"""A channel without a rate reads the store's pause at most this often (seconds): a pause another
daemon was asked for reaches this one within a second, and a send costs no transaction."""


class Limiter(Protocol):
    """What a rate-limited channel waits on: RateLimiter or SharedRateLimiter."""

    def wait(self) -> float: ...

    def pause(self, seconds: float) -> None: ...

    def idle(self) -> bool:
        """Whether a send may go now without waiting or asking the store (no `wait` needed)."""
        ...


class RateLimiter:
    """Slots `1 / rate` seconds apart, shared by every thread of this process that sends on
    the channel."""

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

    def idle(self) -> bool:
        return False  # every send takes a slot


class SharedRateLimiter:
    """Slots `1 / rate` seconds apart, reserved in the store: shared by every daemon on it.

    Each wait is one short transaction (nurture.store.slots) and the sleep comes after it.
    """

    def __init__(
        self, store: Store, channel: str, rate: float, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.store, self.channel = store, channel
        self.interval = 1.0 / rate
        self.sleep = sleep

    def wait(self) -> float:
        """Block until this caller's slot; how long it waited."""
        waited = slots.reserve(self.store, self.channel, self.interval).wait
        if waited > 0:
            self.sleep(waited)
        return waited

    def pause(self, seconds: float) -> None:
        """No slot for any daemon before `seconds` from now (a 429's Retry-After)."""
        slots.pause(self.store, self.channel, min(seconds, LONGEST_PAUSE))

    def idle(self) -> bool:
        return False  # every send reserves a slot in the store


class PauseOnly:
    """The limiter of a channel without a rate: sends are not spaced, they only wait out a
    provider's Retry-After, kept in the store when there is one (so every daemon pauses)."""

    def __init__(
        self,
        store: Store | None,
        channel: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store, self.channel, self.clock, self.sleep = store, channel, clock, sleep
        self.until, self.checked = 0.0, float("-inf")
        self.lock = threading.Lock()

    def wait(self) -> float:
        """Block while the channel is paused; how long it waited."""
        with self.lock:
            now = self.clock()
            if self.store is not None and now - self.checked >= PAUSE_CHECK:
                self.checked = now  # a reservation 0 s long is the pause left, if any
                paused = slots.reserve(self.store, self.channel, 0.0).wait
                self.until = max(self.until, now + paused)
            waited = max(self.until - now, 0.0)
        if waited > 0:
            self.sleep(waited)
        return waited

    def idle(self) -> bool:
        """Not paused, and the store's pause was read less than PAUSE_CHECK ago."""
        with self.lock:
            now = self.clock()
            fresh = self.store is None or now - self.checked < PAUSE_CHECK
            return fresh and self.until <= now

    def pause(self, seconds: float) -> None:
        """No send before `seconds` from now, here at once and in every daemon on the store."""
        seconds = min(seconds, LONGEST_PAUSE)
        with self.lock:
            self.until = max(self.until, self.clock() + seconds)
        if self.store is not None:
            slots.pause(self.store, self.channel, seconds)


class RateLimited:
    """A channel whose sends wait for the limiter. Its `settle`, when the channel has one, is
    the channel's own (a lookup is not a send).

    On the engine's event loop (`send_async`, when the channel has it) the wait for a slot runs
    in a worker thread, as a slot reserved in the store is a transaction; with a `rate`, at most
    RATE_WINDOW's worth of its messages are in flight at once."""

    def __init__(self, channel: Channel, limiter: Limiter, rate: float | None = None) -> None:
        self.channel, self.limiter = channel, limiter
        if hasattr(channel, "settle"):
            self.settle = channel.settle
        if hasattr(channel, "send_async"):
            self.send_async = self._send_async
        limit = concurrency(channel)
        if rate is not None:  # what it sends in RATE_WINDOW: each waits at most that for its slot
            window = max(1, math.ceil(rate * RATE_WINDOW))
            limit = window if limit is None else min(limit, window)
        self.concurrency = limit

    def send(self, message: OutgoingMessage) -> SendResult:
        with self._paused_on_retry_after():
            self._wait(self.limiter.wait)
            return self.channel.send(message)

    async def _send_async(self, message: OutgoingMessage) -> SendResult:
        with self._paused_on_retry_after():
            if not self.limiter.idle():
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, self._wait, self.limiter.wait)
            return await deliver(self.channel, message)

    async def aclose(self) -> None:
        await close(self.channel)

    @staticmethod
    def _wait(wait: Callable[[], float]) -> None:
        try:
            wait()
        except STORE_ERRORS as error:  # nothing was sent: safe to retry
            raise TemporaryFailure(
                f"the rate limit could not be read: {type(error).__name__}"
            ) from None

    @contextmanager
    def _paused_on_retry_after(self) -> Iterator[None]:
        try:
            yield
        except TemporaryFailure as failure:
            if failure.retry_after:
                with suppress(*STORE_ERRORS):  # the retry still waits; other daemons may not
                    self.limiter.pause(failure.retry_after)
            raise


def limited(
    channels: Mapping[str, Channel], rates: Mapping[str, float], store: Store | None = None
) -> dict[str, Channel]:
    """Each kind of message through its channel, behind its own limiter where it has a rate:
    slots reserved in `store` when there is one, else in this process. Every other channel
    still pauses for a provider's Retry-After (but the outbox, which sends nothing)."""
    wrapped = dict(channels)
    for kind, channel in channels.items():
        if kind in rates:
            wrapped[kind] = RateLimited(channel, limiter(kind, rates[kind], store), rates[kind])
        elif not is_transactional(channel):
            wrapped[kind] = RateLimited(channel, PauseOnly(store, kind))
    return wrapped


def limiter(kind: str, rate: float, store: Store | None = None) -> Limiter:
    """The limiter of one kind of message: shared through `store`, or this process's own."""
    return SharedRateLimiter(store, kind, rate) if store is not None else RateLimiter(rate)


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
