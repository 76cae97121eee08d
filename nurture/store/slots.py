"""Send slots shared by every daemon on the store: the `channel_slot` row of each kind of message.

    slot = reserve(store, "sms", interval=0.1)   # then sleep slot.wait seconds, then send

A reservation is one statement in a transaction of its own (an upsert that moves the row's
`next_slot_at` on by the interval and returns the slot it passed over), so daemons reserving
together queue on the row lock for a moment and never get the same slot; the sleep and the
send come after the commit.

Times are the store's clock (seconds since the epoch): the slot and the `now` it is compared
with come from the same statement, so a daemon on a machine whose clock is off still waits the
right time, and the daemons' clocks never have to agree. SQLite's clock is its host's, the
only one its daemons can share a file on; it counts milliseconds, so a wait may be up to one
millisecond long (never short).
"""

from functools import cache
from typing import NamedTuple

from sqlalchemy import TextClause, text

from nurture.store.db import Store

_NOW = {
    "postgresql": "extract(epoch FROM statement_timestamp())::float8",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
_GREATEST = {"postgresql": "greatest", "sqlite": "max"}

_RESERVE = """
INSERT INTO channel_slot (channel, next_slot_at) VALUES (:channel, {now} + :interval)
ON CONFLICT (channel) DO UPDATE
SET next_slot_at = {greatest}(channel_slot.next_slot_at, {now}) + :interval
RETURNING next_slot_at - :interval AS at, {now} AS now
"""

_PAUSE = """
INSERT INTO channel_slot (channel, next_slot_at) VALUES (:channel, {now} + :seconds)
ON CONFLICT (channel) DO UPDATE
SET next_slot_at = {greatest}(channel_slot.next_slot_at, {now} + :seconds)
"""


class Slot(NamedTuple):
    """A reserved slot and the store's time when it was reserved (seconds since the epoch)."""

    at: float
    now: float

    @property
    def wait(self) -> float:
        """How long to wait for the slot: none when it is free at once."""
        return max(self.at - self.now, 0.0)


def reserve(store: Store, channel: str, interval: float) -> Slot:
    """The next free slot of `channel`; the one after it is `interval` seconds later."""
    with store.begin(immediate=True) as connection:
        found = connection.execute(
            _sql(_RESERVE, store.engine.dialect.name), {"channel": channel, "interval": interval}
        )
        return Slot(*found.one())


def pause(store: Store, channel: str, seconds: float) -> None:
    """No slot of `channel` for any daemon before `seconds` from now (a provider's Retry-After)."""
    with store.begin(immediate=True) as connection:
        connection.execute(
            _sql(_PAUSE, store.engine.dialect.name), {"channel": channel, "seconds": seconds}
        )


@cache
def _sql(template: str, dialect: str) -> TextClause:
    return text(template.format(now=_NOW[dialect], greatest=_GREATEST[dialect]))
