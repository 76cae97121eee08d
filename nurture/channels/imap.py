"""A mailbox of leads' answers read over IMAP (`imaplib`): its unseen messages, raw, each
marked seen once it is handled.

    with ImapMailbox(config) as mailbox:
        for uid, raw in mailbox.unseen():
            ...                     # record it (committed)
            mailbox.seen(uid)       # then, and only then, mark it seen

A message is fetched with BODY.PEEK (reading it does not mark it seen): one whose handling
failed, or whose daemon stopped before `seen`, is read again at the next look, and its
Message-ID makes that harmless. A problem reaching or using the mailbox is a ChannelError
whose text names the server, never the password.
"""

import contextlib
import imaplib
import ssl
from collections.abc import Iterator
from types import TracebackType

from nurture.channels.config import ImapConfig
from nurture.errors import ChannelError

BATCH = 100
"""The most messages one look takes (the next look takes the rest)."""


class ImapMailbox:
    """One connection to the mailbox, logged in, its folder selected."""

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self.where = f"{config.host}:{config.effective_port}"
        self._imap: imaplib.IMAP4 | None = None

    def __enter__(self) -> "ImapMailbox":
        config = self.config
        context = ssl.create_default_context(cafile=config.ca_file)
        with self._failing("reach"):
            if config.security == "tls":
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    config.host, config.effective_port, ssl_context=context, timeout=config.timeout
                )
            else:
                imap = imaplib.IMAP4(config.host, config.effective_port, timeout=config.timeout)
                if config.security == "starttls":
                    imap.starttls(ssl_context=context)
            self._imap = imap
        try:
            self._log_in(imap)
        except BaseException:
            self.__exit__(None, None, None)  # the connection closed: no socket left behind
            raise
        return self

    def _log_in(self, imap: imaplib.IMAP4) -> None:
        config = self.config
        password = config.password.get_secret_value() if config.password else ""
        with self._failing("log in to"):
            imap.login(config.username, password)
        with self._failing("open the folder of"):
            status, _ = imap.select(_quoted(config.folder))
        if status != "OK":
            raise ChannelError(f"IMAP {self.where}: no folder {config.folder!r}")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        imap, self._imap = self._imap, None
        if imap is not None:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()

    def unseen_uids(self) -> list[str]:
        """The uids of the unseen messages, oldest first."""
        with self._failing("search"):
            status, found = self._open().uid("SEARCH", "UNSEEN")
        listed = found[0] if status == "OK" and found else None
        return listed.decode().split() if isinstance(listed, bytes) else []

    def unseen(self) -> Iterator[tuple[str, bytes]]:
        """(uid, raw message) of each unseen message, oldest first, at most BATCH."""
        imap = self._open()
        for uid in self.unseen_uids()[:BATCH]:
            with self._failing("read from"):
                status, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) == 2), None)
            if status == "OK" and isinstance(raw, bytes):
                yield uid, raw

    def seen(self, uid: str) -> None:
        """Mark the message seen: handled, not read again."""
        with self._failing("mark a message seen in"):
            self._open().uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")

    def _open(self) -> imaplib.IMAP4:
        if self._imap is None:
            raise ChannelError(f"IMAP {self.where}: the mailbox is not open")
        return self._imap

    @contextlib.contextmanager
    def _failing(self, doing: str) -> Iterator[None]:
        """Turn the errors of an IMAP call into a ChannelError saying what was being done."""
        what = f"IMAP: could not {doing} {self.where}"
        try:
            yield
        except imaplib.IMAP4.error as error:
            said = error.args[0] if error.args else error
            said = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
            raise ChannelError(f"{what}: {said}") from None
        except OSError as error:  # refused, timed out, TLS refused
            raise ChannelError(f"{what}: {error.strerror or error}") from None


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
