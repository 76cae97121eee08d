"""The leases of the batches a pipeline holds, renewed while it works: a slow provider slows
the sends down, never lets a lease expire under them and another daemon take its enrollments
(DESIGN.md §4).

    with leases.Renewal(store, worker, lease) as renewal:
        renewal.add(batch)           # a claimed batch
        renewal.done(batch, ids)     # its steps written: those leases are no longer ours

A lease still expires when its daemon dies or stalls longer than a lease (then any daemon
rescues it); the completion counts the rows it lost that way instead of failing.
"""

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType

from nurture.engine.delivery.sends import serialized
from nurture.store import queries
from nurture.store.db import STORE_ERRORS, Store


@dataclass(eq=False)
class Batch:
    """A claimed batch: the time it was claimed at and the enrollments it still holds."""

    now: datetime
    held: set[int]
    started: float = field(default_factory=time.monotonic)
    """When its claim began (a monotonic clock)."""

    def until(self, lease: timedelta) -> datetime:
        """Its leases' new end: the engine reads no wall clock, so the lease runs from the `now`
        the batch was claimed at, plus the time it has worked since (a monotonic clock)."""
        return self.now + lease + timedelta(seconds=time.monotonic() - self.started)


class Renewal:
    """Renews every held batch's leases every third of `lease`, in a thread, while in use."""

    def __init__(self, store: Store, worker: str, lease: timedelta) -> None:
        self.store, self.worker, self.lease = store, worker, lease
        self.batches: list[Batch] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="lease", daemon=True)

    def add(self, batch: Batch) -> None:
        with self.lock:
            self.batches.append(batch)

    def done(self, batch: Batch, ids: list[int]) -> None:
        """Those of the batch's enrollments whose step is written: their leases are over."""
        with self.lock:
            batch.held.difference_update(ids)
            if not batch.held:
                self.batches.remove(batch)

    def held(self) -> list[tuple[Batch, list[int]]]:
        with self.lock:
            return [(batch, list(batch.held)) for batch in self.batches]

    def give_back(self) -> None:
        """Release every held lease at once where the store allows (else they expire)."""
        ids = [id_ for _, held in self.held() for id_ in held]
        if not ids:
            return
        try:
            with serialized(self.store), self.store.begin(immediate=True) as connection:
                queries.release(connection, self.worker, ids)
        except STORE_ERRORS:
            pass

    def _beat(self) -> None:
        while not self.stop.wait(self.lease.total_seconds() / 3):
            try:
                with serialized(self.store), self.store.begin(immediate=True) as connection:
                    for batch, ids in self.held():
                        queries.renew(connection, ids, self.worker, batch.until(self.lease))
            except STORE_ERRORS:
                continue  # the store is back by the next beat, or the lease runs out

    def __enter__(self) -> "Renewal":
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop.set()
        self.thread.join()
