"""The console channel: print each message (one line, then its body), send nothing."""

import itertools
import sys
import threading
from typing import TextIO

from nurture.channels.protocol import OutgoingMessage, SendResult


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
        if message.template:  # WhatsApp outside the 24-hour window: the approved template goes
            head += f" (template {message.template['content_sid']})"
        body = "\n".join("    " + line for line in message.body.splitlines())
        with self._lock:
            stream = self.stream or sys.stdout
            print(head, body, sep="\n", file=stream, flush=True)
            return SendResult(f"console-{next(self._ids)}")
