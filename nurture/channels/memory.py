"""The memory channel: keep every message in a list (tests, dry runs); optionally slow or failing."""

import threading
import time
from collections.abc import Callable

from nurture.channels.protocol import OutgoingMessage, SendResult

Behaviour = Callable[[OutgoingMessage], None]


class MemoryChannel:
    """Records sends in `sent`; `behaviour` may raise a failure or sleep, `delay` simulates latency.

    `peak` is the largest number of sends seen in flight at once.
    """

    def __init__(self, *, delay: float = 0.0, behaviour: Behaviour | None = None) -> None:
        self.sent: list[OutgoingMessage] = []
        self.attempts: list[OutgoingMessage] = []
        self.delay = delay
        self.behaviour = behaviour
        self.peak = 0
        self._in_flight = 0
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> SendResult:
        with self._lock:
            self.attempts.append(message)
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            if self.behaviour is not None:
                self.behaviour(message)
            with self._lock:
                self.sent.append(message)
                return SendResult(f"memory-{len(self.sent)}")
        finally:
            with self._lock:
                self._in_flight -= 1

    def bodies(self) -> list[str]:
        """What was sent, in order."""
        return [message.body for message in self.sent]
