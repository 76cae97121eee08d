"""Faults a test server injects, pushed one by one or drawn with seeded odds (see servers.py)."""

import random
import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass

KINDS = ("slow", "late", "drop", "cut", "busy", "error", "reset")


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of a server (the kinds are in this module's docstring)."""

    kind: str  # one of KINDS
    seconds: float = 0.0  # slow and late: the wait; busy: the Retry-After
    status: int = 503  # error: the HTTP status


class Faults:
    """The faults a server injects: the pushed ones first, else drawn with seeded odds."""

    def __init__(self, odds: Mapping[Fault, float] | None = None, seed: int = 0) -> None:
        unknown = [f.kind for f in odds or {} if f.kind not in KINDS]
        assert not unknown, f"unknown fault kinds {unknown}: use {KINDS}"
        self.odds = dict(odds or {})
        self.random = random.Random(seed)
        self.queue: deque[Fault | None] = deque()
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()

    def push(self, *faults: Fault | None) -> None:
        """The next message requests' faults, in order; None: that one is served normally."""
        with self.lock:
            self.queue.extend(faults)

    def draw(self, stage: str = "answer") -> Fault | None:
        """The fault for a new connection (`stage="connect"`: reset or none) or a message."""
        with self.lock:
            fault = self._next(stage)
            if fault is not None:
                self.injected[fault.kind] += 1
            return fault

    def _next(self, stage: str) -> Fault | None:
        at_connect = stage == "connect"
        if self.queue:
            head = self.queue[0]
            resets = head is not None and head.kind == "reset"
            return self.queue.popleft() if resets == at_connect else None
        roll = self.random.random()
        for fault, odds in self.odds.items():
            if (fault.kind == "reset") == at_connect:
                if roll < odds:
                    return fault
                roll -= odds
        return None
