"""A lean HTTP/1.1 client for the providers' POSTs: keep-alive pool, no framework.

aiohttp costs ~125 µs of CPU per call on this stack (request and response objects,
header multidicts, payload writers, stream readers, tracing hooks); the same POST over
a bare ``asyncio.Protocol`` costs ~20 µs. This client does only what a provider's
calls need: ``POST`` a body, read a response framed by ``Content-Length``, ``chunked``
or the connection's end, over plain TCP or TLS (``ssl.create_default_context()``: the
system's CAs, the host name checked, as aiohttp does), with up to ``pool_size``
connections kept alive for 30 s. :meth:`LeanClient.post` reads a whole body;
:meth:`LeanClient.stream` opens a response whose body is read piece by piece as it
arrives (server-sent events), and hands the connection back to the pool only when the
body was read to its end. It raises plain exceptions (:class:`ConnectTimeout`,
:class:`CannotConnect`, ``OSError``, :class:`Disconnected`, :class:`BadHttp`); the
transport turns them into ``UpstreamError``\\ s.

The caller's phase clock is told of every chunk of the body (``got_bytes``); a request
that fails or is cancelled, or a stream left before its end, closes its connection, so
the upstream sees the abort.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

KEEPALIVE_S = 30.0
MAX_HEAD_BYTES = 64 * 1024


class ConnectTimeout(Exception):
    """Opening the connection took longer than ``connect_s``."""


class CannotConnect(Exception):
    """Opening the connection failed (refused, unreachable, TLS handshake or certificate)."""


class Disconnected(Exception):
    """The upstream closed the connection early; ``cut`` when part of the body had arrived."""

    def __init__(self, cut: bool) -> None:
        super().__init__("cut short" if cut else "closed before answering")
        self.cut = cut


class BadHttp(Exception):
    """The bytes received are not an HTTP/1.x response this client reads."""


class BodyTooLarge(Exception):
    pass


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Slots:
    """The pool's limit of requests in flight: ``asyncio.Semaphore``'s first-come order, with a
    free slot taken as ``free -= 1`` by the caller (the semaphore's ``async with`` costs three
    coroutines a request). While anyone waits, ``free`` stays 0 and a released slot goes to the
    first waiter."""

    __slots__ = ("_waiters", "free")

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.free > 0:
            self.free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            else:  # handed a slot, then cancelled before using it: the next one gets it
                self.release()
            raise

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


class _Conn(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.done = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        waiter = self.waiter  # _wake(), inlined: once per read of every response
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def eof_received(self) -> bool:
        self.done = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.done = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def more(self) -> bool:
        """Wait for more bytes; False when the connection ended (raises its error, if any)."""
        if self.done:
            if self.error is not None:
                raise self.error
            return False
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None
        if self.error is not None:
            raise self.error
        return True

    def reusable(self, now: float) -> bool:
        return not self.done and not self.buf and now - self.idle_since < KEEPALIVE_S

    def close(self) -> None:
        self.done = True
        if self.transport is not None:
            self.transport.abort()


class LeanClient:
    """One origin's pool (``scheme://host:port``); made and used inside one event loop."""

    def __init__(self, base_url: str, *, pool_size: int, connect_s: float) -> None:
        parts = urlsplit(base_url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        self.netloc = parts.netloc
        self.connect_s = connect_s
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if self.tls else None
        self._idle: list[_Conn] = []
        self._slots = _Slots(pool_size)
        self._heads: dict[str, bytes] = {}
        self._lines: dict[tuple[tuple[str, str], ...], bytes] = {}
        """The header lines of each set of headers sent (checked and encoded once), at most
        :data:`MAX_HEADER_SETS`: a provider sends the same few sets on every call."""

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, limit: int, got_bytes: Callable[[], None]
    ) -> Response:
        """POST ``body``; the response's body is cut at ``limit`` bytes for an error status, refused above it.

        One coroutine from the write to the answer: a free slot and an idle connection are taken
        without suspending, the answer is awaited on the connection's own future, and an answer
        whose head and ``Content-Length`` body arrived together (the usual JSON answer) is read
        from the buffer in one step; anything else goes through the general readers."""
        slots = self._slots
        if slots.free > 0:
            slots.free -= 1
        else:
            await slots.acquire()
        conn: _Conn | None = None
        try:
            conn = self._idle_conn() or await self._connect()
            conn.transport.write(self._request(url, body, headers))  # type: ignore[union-attr]
            while not conn.buf:  # what more() does, without its coroutine
                if conn.done:
                    raise conn.error or Disconnected(cut=False)
                waiter = conn.waiter = conn.loop.create_future()
                try:
                    await waiter
                finally:
                    conn.waiter = None
            status, version, headers = _head_now(conn) or await _read_head(conn)
            found = _sized_now(conn, status, headers, limit)
            body, keep = found or await _read_body(conn, status, headers, limit, got_bytes)
        except BaseException:
            if conn is not None:
                conn.close()
            slots.release()
            raise
        self._release(conn, keep and _keeps(version, status, headers))
        slots.release()
        return Response(status, headers, body)

    def stream(self, url: str, body: bytes, headers: Mapping[str, str]) -> Stream:
        """POST ``body`` and read the answer as it comes: ``async with client.stream(...) as resp``."""
        return Stream(self, self._request(url, body, headers))

    def _request(self, url: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        head = self._heads.get(url)
        if head is None:
            parts = urlsplit(url)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            head = self._heads[url] = f"POST {target} HTTP/1.1\r\nHost: {self.netloc}\r\n".encode("latin-1")
        key = tuple(headers.items())
        lines = self._lines.get(key)
        if lines is None:
            lines = _header_lines(headers)
            if "traceparent" not in headers:  # a traced call's headers are its own: not kept
                if len(self._lines) >= MAX_HEADER_SETS:
                    self._lines.clear()
                self._lines[key] = lines
        return b"".join((head, lines, b"Content-Length: %d\r\n%s" % (len(body), _TAIL), body))

    def _release(self, conn: _Conn, keep: bool) -> None:
        if keep:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()

    async def _checkout(self) -> _Conn:
        return self._idle_conn() or await self._connect()

    def _idle_conn(self) -> _Conn | None:
        """The most recently used idle connection still fit for a request (others are closed)."""
        if self._idle:
            now = time.monotonic()
            while self._idle:
                conn = self._idle.pop()
                if conn.reusable(now):
                    return conn
                conn.close()
        return None

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_s):
                _, conn = await loop.create_connection(
                    lambda: _Conn(loop),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                )
        except TimeoutError:
            raise ConnectTimeout() from None
        except OSError as exc:  # ssl.SSLError included
            raise CannotConnect(
                getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
            ) from None
        return conn

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


_SIZE_LINE, _CHUNK_END, _TRAILERS = -1, -2, -3
"""States of a chunked body between chunks: a size line, the CRLF after a chunk's data, the trailers."""
MAX_SIZE_LINE = 4096


class Stream:
    """One streamed answer: ``status`` and ``headers``, then :meth:`read` for each piece of the body.

    The pool's slot is held from ``__aenter__`` to ``__aexit__``. The connection goes back
    to the pool only when the body was read to its end and its framing allows it; an error,
    a cancellation or a caller that leaves early closes it.
    """

    __slots__ = ("_client", "_conn", "_ended", "_inflate", "_keep", "_left", "_mode", "_request", "headers", "status")

    def __init__(self, client: LeanClient, request: bytes) -> None:
        self._client = client
        self._request = request
        self._conn: _Conn | None = None
        self.status = 0
        self.headers: dict[str, str] = {}
        self._keep = False
        self._ended = False
        self._mode = "close"
        self._left = 0
        self._inflate: zlib._Decompress | None = None

    async def __aenter__(self) -> Stream:
        client = self._client
        await client._slots.acquire()
        try:
            conn = self._conn = await client._checkout()
            conn.transport.write(self._request)  # type: ignore[union-attr]
            status, version, headers = await _read_head(conn)
            self._frame(headers)
        except BaseException:
            self._finish(keep=False)
            raise
        self.status, self.headers = status, headers
        self._keep = _keeps(version, status, headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._finish(keep=exc[0] is None and self._ended and self._keep and not self._conn_buffered())

    def _frame(self, headers: dict[str, str]) -> None:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._mode, self._left = "chunked", _SIZE_LINE
        elif "content-length" in headers:
            self._mode, self._left = "sized", _length(headers)
            self._ended = self._left == 0
        encoding = _encoding(headers)
        if encoding != "identity":
            self._inflate = zlib.decompressobj(_WBITS[encoding])

    def _conn_buffered(self) -> bool:
        return self._conn is not None and bool(self._conn.buf)

    def _finish(self, keep: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client._release(conn, keep)
        self._client._slots.release()

    async def read(self) -> bytes:
        """The body's next bytes, as many as have arrived (decoded); ``b""`` once it ended."""
        conn = self._conn
        assert conn is not None, "read outside of async with"
        while True:
            if conn.buf and not self._ended:
                piece = self._take(conn.buf)
                if piece:
                    if self._inflate is not None:
                        piece = self._inflated(piece)
                        if not piece:
                            continue
                    return piece
            if self._ended:
                return self._inflated(b"", end=True) if self._inflate is not None else b""
            if not await conn.more():
                if self._mode != "close":
                    raise Disconnected(cut=True)
                self._ended = True

    async def read_all(self, limit: int, got_bytes: Callable[[], None]) -> bytes:
        """The rest of the body in one piece (an error's, or one that is not a stream), cut at ``limit``
        for an error status, refused above it; the connection is not reused after it."""
        conn = self._conn
        assert conn is not None, "read_all outside of async with"
        self._keep = False
        body, _ = await _read_body(conn, self.status, self.headers, limit, got_bytes)
        return body

    def _inflated(self, piece: bytes, end: bool = False) -> bytes:
        assert self._inflate is not None
        try:
            return self._inflate.flush() if end else self._inflate.decompress(piece)
        except zlib.error:
            raise BadHttp(f"body is not valid {self.headers.get('content-encoding')}") from None

    def _take(self, buf: bytearray) -> bytes:
        """Removes what the framing allows from ``buf``: the body's bytes it holds."""
        if self._mode == "sized":
            n = min(self._left, len(buf))
            piece = bytes(buf[:n])
            del buf[:n]
            self._left -= n
            self._ended = self._left == 0
            return piece
        if self._mode == "close":
            piece = bytes(buf)
            buf.clear()
            return piece
        return self._take_chunked(buf)

    def _take_chunked(self, buf: bytearray) -> bytes:
        parts: list[bytes] = []
        while buf and not self._ended:
            left = self._left
            if left > 0:
                n = min(left, len(buf))
                parts.append(bytes(buf[:n]))
                del buf[:n]
                self._left = left - n or _CHUNK_END
            elif left == _CHUNK_END:
                if len(buf) < 2:
                    break
                if buf[:2] != b"\r\n":
                    raise BadHttp("a chunk does not end with CRLF")
                del buf[:2]
                self._left = _SIZE_LINE
            else:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    if len(buf) > MAX_SIZE_LINE:
                        raise BadHttp("bad chunk size")
                    break
                line = bytes(buf[:eol])
                del buf[: eol + 2]
                if left == _TRAILERS:
                    self._ended = not line  # the empty line after the last chunk (and its trailers)
                else:
                    self._left = _chunk_size(line) or _TRAILERS
        return parts[0] if len(parts) == 1 else b"".join(parts)


def _chunk_size(line: bytes) -> int:
    text = line.split(b";", 1)[0].strip()
    try:
        n = int(text, 16)
    except ValueError:
        raise BadHttp("bad chunk size") from None
    if n < 0 or text[:1] in (b"+", b"-") or text[:2].lower() == b"0x":
        raise BadHttp("bad chunk size")
    return n


class BadHeader(ValueError):
    """A request header a caller set holds a line break (it would split the request)."""


MAX_HEADER_SETS = 64
_TAIL = b"Accept-Encoding: gzip, deflate\r\n\r\n"
"""The head's last line and its end, after ``Content-Length``."""


def _header_lines(headers: Mapping[str, str]) -> bytes:
    lines = []
    for k, v in headers.items():
        if "\n" in k or "\r" in k or "\n" in v or "\r" in v:
            raise BadHeader(k)
        lines.append(f"{k}: {v}\r\n")
    return "".join(lines).encode("latin-1")


def _head_now(conn: _Conn) -> tuple[int, str, dict[str, str]] | None:
    """The response's head when it is in the buffer (taken from it) and not an interim (1xx) one;
    else None, the buffer left as it was for :func:`_read_head`."""
    end = conn.buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = _parse_head(bytes(conn.buf[:end]))
    if head[0] < 200:
        return None
    del conn.buf[: end + 4]
    return head


def _sized_now(conn: _Conn, status: int, headers: dict[str, str], limit: int) -> tuple[bytes, bool] | None:
    """A success's whole ``Content-Length`` body when it is in the buffer, unencoded (taken, as
    :func:`_read_body` would take it); else None, for :func:`_read_body`."""
    if status >= 400 or "content-length" not in headers or "transfer-encoding" in headers:
        return None
    if "content-encoding" in headers:
        return None
    length = _length(headers)
    if length > limit or len(conn.buf) < length:
        return None
    return _take(conn, length), True  # no wait follows: the phase clock need not hear of it


async def _read_head(conn: _Conn) -> tuple[int, str, dict[str, str]]:
    while True:
        end = conn.buf.find(b"\r\n\r\n")
        if end >= 0:
            status, version, headers = _parse_head(bytes(conn.buf[:end]))
            del conn.buf[: end + 4]
            if 100 <= status < 200:  # 100 Continue and the like: the real answer follows
                continue
            return status, version, headers
        if len(conn.buf) > MAX_HEAD_BYTES:
            raise BadHttp(f"response head larger than {MAX_HEAD_BYTES} bytes")
        if not await conn.more():
            raise Disconnected(cut=bool(conn.buf))


def _keeps(version: str, status: int, headers: dict[str, str]) -> bool:
    """Whether the connection may carry another request once this answer's body is read in full.

    An error answer's connection is not reused: its body may have been cut at the cap."""
    return version == "HTTP/1.1" and status < 400 and "close" not in headers.get("connection", "").lower()


async def _read_body(
    conn: _Conn, status: int, headers: dict[str, str], limit: int, got_bytes: Callable[[], None]
) -> tuple[bytes, bool]:
    """The whole (decoded) body, and whether it was framed so that the connection may be reused."""
    cap = limit if status < 400 else min(limit, 64 * 1024)
    keep = True
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _chunked(conn, cap, status >= 400, got_bytes)
    elif "content-length" in headers:
        length = _length(headers)
        body = await _sized(conn, length, cap, status >= 400, got_bytes)
        keep = len(body) == length
    else:
        body = await _until_close(conn, cap, status >= 400, got_bytes)
        keep = False
    encoding = _encoding(headers)
    if encoding != "identity":
        try:
            body = zlib.decompress(body, _WBITS[encoding])
        except zlib.error:
            raise BadHttp(f"body is not valid {encoding}") from None
    return body, keep


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _encoding(headers: dict[str, str]) -> str:
    encoding = headers.get("content-encoding", "identity").lower()
    if encoding != "identity" and encoding not in _WBITS:
        raise BadHttp(f"unsupported Content-Encoding {encoding!r}")
    return encoding


def _length(headers: dict[str, str]) -> int:
    try:
        length = int(headers["content-length"])
    except ValueError:
        raise BadHttp("invalid Content-Length") from None
    if length < 0:
        raise BadHttp("invalid Content-Length")
    return length


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise BadHttp(f"bad status line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadHttp(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return int(code), version, headers


def _take(conn: _Conn, n: int) -> bytes:
    out = bytes(conn.buf[:n])
    del conn.buf[:n]
    return out


def _check(size: int, cap: int, truncate: bool) -> bool:
    """True when the body is complete enough: an error body stops at the cap, a success body above it fails."""
    if size <= cap:
        return False
    if truncate:
        return True
    raise BodyTooLarge(cap)


async def _sized(conn: _Conn, length: int, cap: int, truncate: bool, got_bytes: Callable[[], None]) -> bytes:
    if length > cap and not truncate:
        raise BodyTooLarge(cap)
    while len(conn.buf) < length:
        if _check(len(conn.buf), cap, truncate):
            return _take(conn, cap)
        if not await conn.more():
            raise Disconnected(cut=True)
        got_bytes()
    if conn.buf:
        got_bytes()
    return _take(conn, length)


async def _until_close(conn: _Conn, cap: int, truncate: bool, got_bytes: Callable[[], None]) -> bytes:
    while True:
        if _check(len(conn.buf), cap, truncate):
            return _take(conn, cap)
        if not await conn.more():
            return _take(conn, len(conn.buf))
        got_bytes()


async def _chunked(conn: _Conn, cap: int, truncate: bool, got_bytes: Callable[[], None]) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        while (eol := conn.buf.find(b"\r\n")) < 0:
            if not await conn.more():
                raise Disconnected(cut=True)
            got_bytes()
        line = bytes(conn.buf[:eol]).split(b";", 1)[0].strip()
        try:
            n = int(line, 16)
        except ValueError:
            raise BadHttp("bad chunk size") from None
        while len(conn.buf) < eol + 2 + n + 2:
            if not await conn.more():
                raise Disconnected(cut=True)
            got_bytes()
        chunk = bytes(conn.buf[eol + 2 : eol + 2 + n])
        del conn.buf[: eol + 2 + n + 2]
        if n == 0:
            return b"".join(parts)  # trailers are not read: the last chunk ends with an empty line
        size += n
        parts.append(chunk)
        if _check(size, cap, truncate):
            return b"".join(parts)[:cap]
