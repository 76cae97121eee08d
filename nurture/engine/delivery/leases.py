"""A batch's leases, renewed while it works: a slow provider slows the batch down, never lets
its lease expire under it and another daemon take its enrollments (DESIGN.md §4).

    with leases.renewed(store, ids, worker, now, lease):
        ...  # the sends, the completion

A lease still expires when its daemon dies or stalls longer than a lease (then any daemon
rescues it); the completion counts the rows it lost that way instead of failing.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from nurture.engine.delivery.sends import serialized
from nurture.store import queries
from nurture.store.db import STORE_ERRORS, Store


@contextmanager
def renewed(
    store: Store, ids: list[int], worker: str, now: datetime, lease: timedelta
) -> Iterator[None]:
    """Renew this worker's leases of `ids` every third of `lease` while the block runs.

    The engine reads no wall clock: each renewal extends the lease from the `now` the batch was
    claimed at by the time it has worked since (a monotonic clock).
    """
    stop, started = threading.Event(), time.monotonic()

    def beat() -> None:
        while not stop.wait(lease.total_seconds() / 3):
            until = now + lease + timedelta(seconds=time.monotonic() - started)
            try:
                with serialized(store), store.begin(immediate=True) as connection:
                    queries.renew(connection, ids, worker, until)
            except STORE_ERRORS:
                continue  # the store is back by the next beat, or the lease runs out

    thread = threading.Thread(target=beat, name="lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
