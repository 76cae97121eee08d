"""The console channel: print each message (one line, then its body), send nothing."""

import itertools
import sys
import threading
from typing import TextIO

from nurture.channels.protocol import OutgoingMessage, SendResult, shown_text


class ConsoleChannel:
    """Prints to a stream (stdout by default); a lock keeps concurrent sends from interleaving."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def send(self, message: OutgoingMessage) -> SendResult:
        head = f"[{message.channel}] to {message.recipient}"
        if message.subject:
            head += f": {message.subject}"
        body = "\n".join("    " + line for line in shown_text(message).splitlines())
        with self._lock:
            stream = self.stream or sys.stdout
            print(head, body, sep="\n", file=stream, flush=True)
            return SendResult(f"console-{next(self._ids)}")
