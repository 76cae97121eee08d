"""The HTTP/1.1 client `TwilioChannel.send_async` posts messages with: kept-alive connections
to one origin on one event loop, a protocol of its own (no request or response objects, no
per-request header merging), the request's bytes built from a head made once.

    pool = Pool("https://api.twilio.com", context, limit=256, timeout=30, headers={...})
    status, body, headers = await pool.post("/2010-04-01/Accounts/AC.../Messages.json", form)

It measured about half of aiohttp's CPU per message (docs/benchmarks.md, bench/channels.py).
What can go wrong is raised as one of the errors below, each saying how far the request got
(nurture.channels.twilio_answers reads them as temporary or uncertain): a connection never
made (`ConnectFailed`, `ConnectTimeout`), or a request written and then no answer (timed out,
the connection closed, an answer cut off or not HTTP, an OSError such as a reset).
A connection is used again only after a whole answer that did not ask to close it.
"""

import asyncio
import ssl
from typing import Any
from urllib.parse import urlsplit

HEAD_LIMIT = 65536
"""The most bytes an answer's status line and headers may take."""

Answer = tuple[int, bytes, dict[str, str]]
"""An answer's status, body and headers (their names in title case: Retry-After)."""


class HttpError(Exception):
    """Any of the errors below."""


class ConnectFailed(HttpError):
    """The connection was not made (refused, a name that does not resolve, TLS refused):
    nothing was written. Its cause is the OSError or SSLError."""


class ConnectTimeout(HttpError):
    """The connection (with its TLS handshake) was not made in time: nothing was written."""


class ReadTimeout(HttpError):
    """The request was written and its whole answer did not come in time."""


class Disconnected(HttpError):
    """The connection closed after the request was written, before any answer."""


class CutOff(HttpError):
    """The connection closed in the middle of the answer."""


class NotHttp(HttpError):
    """What came back is not an HTTP/1.x answer."""


class Pool:
    """Up to `limit` kept-alive connections to `url`'s origin, on the loop that uses it."""

    def __init__(
        self,
        url: str,
        context: ssl.SSLContext | None,
        limit: int,
        timeout: float,
        headers: dict[str, str],
    ) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.tls else 80)
        self.context = context if self.tls else None
        self.timeout = timeout
        default = self.port == (443 if self.tls else 80)
        host = self.host if default else f"{self.host}:{self.port}"
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.head = f"Host: {host}\r\n{lines}Content-Length: ".encode("latin-1")
        self.slots = asyncio.Semaphore(limit)
        self.idle: list[_Connection] = []
        self.opened = 0  # connections made, for tests and benches
        self.closed = False

    async def post(self, path: str, body: bytes) -> Answer:
        """POST `body` to `path`; the answer, whatever its status."""
        async with self.slots:
            connection = await self._connection()
            request = b"".join(
                (b"POST ", path.encode(), b" HTTP/1.1\r\n", self.head, b"%d\r\n\r\n" % len(body))
            )
            try:
                answer = await connection.exchange(request + body, self.timeout)
            except BaseException:
                connection.close()
                raise
            if connection.reusable and not self.closed:
                self.idle.append(connection)
            else:
                connection.close()
            return answer

    async def _connection(self) -> "_Connection":
        while self.idle:
            connection = self.idle.pop()
            if connection.reusable:
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                _, connection = await loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self.context,
                    server_hostname=self.host if self.context else None,
                )
        except TimeoutError:
            raise ConnectTimeout(f"no connection to {self.host}:{self.port} in time") from None
        except (OSError, ssl.SSLError) as error:
            raise ConnectFailed(f"no connection to {self.host}:{self.port}") from error
        self.opened += 1
        return connection

    def close(self) -> None:
        """Close the idle connections; those in use close when their answer is in."""
        self.closed = True
        idle, self.idle = self.idle, []
        for connection in idle:
            connection.close()


class _Connection(asyncio.Protocol):
    """One connection: a request written, its answer read, and again while kept alive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Answer] | None = None
        self.lost = False
        self.reusable = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.length: int | None = None  # None with `chunked` False: the body ends at close
        self.chunked = False
        self.body = bytearray()
        self.keep = True

    # the exchange

    async def exchange(self, request: bytes, timeout: float) -> Answer:
        assert self.transport is not None and self.waiter is None
        loop = asyncio.get_running_loop()
        self.reusable, self.buffer = False, bytearray()
        self._reset()
        waiter = self.waiter = loop.create_future()
        timer = loop.call_later(timeout, self._fail, ReadTimeout("no whole answer in time"))
        try:
            self.transport.write(request)
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def _done(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        self.reusable = self.keep and not self.lost and not self.buffer
        waiter.set_result((self.status, bytes(self.body), self.headers))

    def _fail(self, error: BaseException) -> None:
        waiter = self.waiter
        self.reusable = False
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None:  # nothing asked: not a connection to use again
            self.reusable = False
            return
        try:
            self._parse()
        except NotHttp as error:
            self._fail(error)

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost, self.reusable = True, False
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.status and self.length is None and not self.chunked:
            self.body += self.buffer  # an answer whose end is the connection's
            self.buffer = bytearray()
            self._done()
        elif isinstance(exc, OSError):
            waiter.set_exception(exc)
        elif self.status or self.buffer.startswith(b"HTTP/"):
            waiter.set_exception(CutOff("the connection closed in the middle of the answer"))
        elif self.buffer:
            waiter.set_exception(NotHttp(f"not an HTTP answer: {bytes(self.buffer[:40])!r}"))
        else:
            waiter.set_exception(Disconnected("the connection closed without an answer"))

    # reading the answer

    def _parse(self) -> None:
        if not self.status and not self._head():
            return
        if self.chunked:
            self._chunks()
        elif self.length is not None and len(self.buffer) >= self.length:
            self.body, self.buffer = self.buffer[: self.length], self.buffer[self.length :]
            self._done()
        elif self.length is None:  # read to the close
            self.body += self.buffer
            self.buffer = bytearray()

    def _head(self) -> bool:
        """Parse the status line and headers once they are in; whether they are."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > HEAD_LIMIT or (
                len(self.buffer) >= 5 and not self.buffer.startswith(b"HTTP/")
            ):
                raise NotHttp(f"not an HTTP answer: {bytes(self.buffer[:40])!r}")
            return False
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[: end + 4]
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise NotHttp(f"not an HTTP answer: {lines[0][:40]!r}")
        status = int(code)
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            return self._head() if self.buffer else False
        headers = self.headers
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise NotHttp(f"not an HTTP header: {line[:40]!r}")
            headers[name.strip().title()] = value.strip()
        self.status = status
        connection = headers.get("Connection", "").lower()
        self.keep = "close" not in connection and (
            version != "HTTP/1.0" or "keep-alive" in connection
        )
        if "chunked" in headers.get("Transfer-Encoding", "").lower():
            self.chunked = True
        elif "Content-Length" in headers:
            try:
                self.length = int(headers["Content-Length"])
            except ValueError:
                raise NotHttp("a Content-Length that is not a number") from None
        elif status in (204, 304):
            self.length = 0
        else:
            self.keep = False
        return True

    def _chunks(self) -> None:
        """Move whole chunks from the buffer to the body; done at the last (empty) one."""
        buffer = self.buffer
        while True:
            line = buffer.find(b"\r\n")
            if line < 0:
                return
            try:
                size = int(bytes(buffer[:line]).split(b";")[0], 16)
            except ValueError:
                raise NotHttp("a chunk size that is not a number") from None
            if size == 0:
                end = (
                    buffer.find(b"\r\n\r\n", line)
                    if buffer[line + 2 : line + 4] != b"\r\n"
                    else line
                )
                if end < 0:
                    return  # trailers still coming
                del buffer[: end + 4]
                self._done()
                return
            if len(buffer) < line + 2 + size + 2:
                return
            self.body += buffer[line + 2 : line + 2 + size]
            del buffer[: line + 2 + size + 2]
