"""The connections SMTP's send_async reuses: up to a number open at once, on one event loop."""

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass

import aiosmtplib

Connect = Callable[[], Awaitable[aiosmtplib.SMTP]]
"""Opens one connection, secured and logged in."""


@dataclass
class Kept:
    """A pooled connection and the messages it has sent."""

    smtp: aiosmtplib.SMTP
    sent: int = 0


class Pool:
    """Up to `connections` logged-in connections to the relay, on one event loop: a message
    takes an idle one (or opens one while fewer are open) and gives it back when done."""

    def __init__(self, connect: Connect, size: int, per_connection: int) -> None:
        self.connect, self.per_connection = connect, per_connection
        self.loop = asyncio.get_running_loop()
        self.idle: list[Kept] = []
        self.slots = asyncio.Semaphore(size)

    async def take(self, new: bool = False) -> Kept:
        """An idle connection still open (`new`: a new one), else a new one."""
        await self.slots.acquire()
        try:
            while self.idle and not new:
                kept = self.idle.pop()
                if kept.smtp.is_connected:
                    return kept
                kept.smtp.close()
            return Kept(await self.connect())
        except BaseException:
            self.slots.release()
            raise

    async def done(self, kept: Kept) -> None:
        """A message sent: keep the connection, or QUIT after `messages_per_connection`."""
        kept.sent += 1
        if kept.sent < self.per_connection:
            return self.give(kept, healthy=True)
        with suppress(aiosmtplib.SMTPException, OSError):
            await kept.smtp.quit()
        self.give(kept, healthy=False)

    def give(self, kept: Kept, healthy: bool) -> None:
        """Back to the pool (closed unless `healthy`): its slot is free for the next message."""
        if healthy:
            self.idle.append(kept)
        else:
            kept.smtp.close()
        self.slots.release()

    async def aclose(self) -> None:
        """QUIT every idle connection (close_all)."""
        await close_all(self.idle)

    def abandon(self) -> None:
        """Forget connections of a loop no longer running (their sockets closed without it)."""
        idle, self.idle = self.idle, []
        for kept in idle:
            with suppress(RuntimeError):
                kept.smtp.close()


async def close_all(idle: list[Kept]) -> None:
    """QUIT every connection of `idle` (emptied), and wait (a second at most) for their sockets
    to close: a TLS connection's closes after its shutdown, on the loop."""
    taken = idle[:]
    idle.clear()
    protocols = [kept.smtp.protocol for kept in taken]
    for kept in taken:
        with suppress(aiosmtplib.SMTPException, OSError):
            await kept.smtp.quit()
        kept.smtp.close()
    for _ in range(100):
        if all(p is None or p.transport is None for p in protocols):
            return
        await asyncio.sleep(0.01)
