"""A network error in the same words whichever library raised it (requests, aiohttp, smtplib,
aiosmtplib), so a send on the event loop fails with the same message as one in a thread."""

import os
import socket
import ssl
from collections.abc import Iterator


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it wraps (its args, `reason`, cause and context), outermost first."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo and len(seen) < 10:
        current = todo.pop(0)
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        yield current
        reason = getattr(current, "reason", None)  # urllib3's MaxRetryError
        wrapped = [a for a in (reason, *current.args) if isinstance(a, BaseException)]
        todo += [current.__cause__, current.__context__, *wrapped]


def os_words(error: BaseException) -> str:
    """'ConnectionRefusedError: [Errno 111] Connection refused', from the errno: the same for
    asyncio's "Connect call failed ('127.0.0.1', 25)" and aiohttp's ClientOSError(104, ...)."""
    number = getattr(error, "errno", None)
    if isinstance(error, OSError) and not isinstance(error, (ssl.SSLError, socket.gaierror)):
        kind = type(OSError(number, "")) if isinstance(number, int) and number > 0 else OSError
        if isinstance(number, int) and kind is not OSError:  # an errno that names what happened
            return f"{kind.__name__}: [Errno {number}] {os.strerror(number)}"
    return f"{type(error).__name__}: {error}"
