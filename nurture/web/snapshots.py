"""The figures pages show, computed once for every visitor and refreshed in the background.

`nurture stats`' aggregates read every enrollment (and, per step, every execution) of a
sequence: over a million enrollments a second or two of the database's time. A page asks for
the latest snapshot instead, so it answers in milliseconds; a snapshot older than its age
limit is recomputed in a thread while the stale one is still shown, at most one at a time per
key. The limit is `min_age` seconds, or five times what computing it took, whichever is more:
however many tabs are open, the figures cost the store at most a fifth of its time, and they
are never older than that limit plus one computation. A change made on a page clears them.
"""

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("nurture.web")
STRETCH = 5.0


@dataclass
class _Entry:
    value: Any
    at: float
    took: float
    refreshing: bool = False


class Snapshots:
    def __init__(self, min_age: float = 2.0) -> None:
        self.min_age = min_age
        self.entries: dict[Hashable, _Entry] = {}
        self.lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The latest value for `key`: computed now when there is none, else as it stands (a
        stale one is recomputed in the background)."""
        with self.lock:
            entry = self.entries.get(key)
            stale = entry is not None and not entry.refreshing and self._stale(entry)
            if stale and entry is not None:
                entry.refreshing = True
        if entry is None:
            return self._compute(key, compute)
        if stale:
            threading.Thread(target=self._refresh, args=(key, compute), daemon=True).start()
        return entry.value

    def _stale(self, entry: _Entry) -> bool:
        return time.monotonic() - entry.at > max(self.min_age, STRETCH * entry.took)

    def _compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        started = time.monotonic()
        value = compute()
        finished = time.monotonic()
        with self.lock:
            self.entries[key] = _Entry(value, finished, finished - started)
        return value

    def _refresh(self, key: Hashable, compute: Callable[[], Any]) -> None:
        try:
            self._compute(key, compute)
        except Exception:  # the stale value stays; the next request tries again
            log.exception("could not refresh the dashboard's figures (%s)", key)
            with self.lock:
                if (entry := self.entries.get(key)) is not None:
                    entry.refreshing = False

    def clear(self) -> None:
        """Forget every snapshot (a change was made: the next page computes afresh)."""
        with self.lock:
            self.entries.clear()
