"""What an SMTP relay's answer means, or its silence: the errors of smtplib, aiosmtplib and the
network as temporary or permanent failures, in the same words for both libraries (the rules
are in nurture.channels.smtp's docstring)."""

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import aiosmtplib

from nurture.channels.network import causes, os_words
from nurture.channels.protocol import PermanentFailure, TemporaryFailure


@contextmanager
def classified() -> Iterator[None]:
    """Turn smtplib's, aiosmtplib's and the network's errors into temporary or permanent
    failures, in the same words for both libraries."""
    try:
        yield
    except smtplib.SMTPRecipientsRefused as error:
        code, reply = next(iter(error.recipients.values()))
        raise _by_code(code, reply) from None
    except smtplib.SMTPResponseException as error:
        raise _by_code(error.smtp_code, error.smtp_error) from None
    except aiosmtplib.SMTPResponseException as error:
        raise _by_code(error.code, error.message) from None
    except (smtplib.SMTPException, aiosmtplib.SMTPException, OSError) as error:
        if refused := next((c for c in causes(error) if isinstance(c, REFUSED)), None):
            raise PermanentFailure(f"SMTP: {refused}") from None
        raise TemporaryFailure(f"SMTP: {words(error)}") from None


REFUSED = (smtplib.SMTPNotSupportedError, aiosmtplib.SMTPNotSupported, ssl.SSLCertVerificationError)
"""What sending again cannot change: an extension the relay lacks, a certificate it fails."""
DISCONNECTED = (smtplib.SMTPServerDisconnected, aiosmtplib.SMTPServerDisconnected)


def words(error: BaseException) -> str:
    """What went wrong on the connection: 'the relay closed the connection', 'timed out',
    'ConnectionRefusedError: [Errno 111] Connection refused'."""
    chain = list(causes(error))
    if any(isinstance(c, TimeoutError) for c in chain):  # smtplib: a disconnect, from a timeout
        return "timed out"
    if any(isinstance(c, DISCONNECTED) for c in chain):
        return "the relay closed the connection"
    inner = [c for c in chain if not type(c).__module__.startswith(("smtplib", "aiosmtplib"))]
    return os_words(inner[-1] if inner else error)


def _by_code(code: int, reply: bytes | str) -> Exception:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    described = f"SMTP {code} {text}".strip()
    return TemporaryFailure(described) if 400 <= code < 500 else PermanentFailure(described)
