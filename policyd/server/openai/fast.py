"""A lean HTTP/1.1 path for the front door's common request: a chat completion, whole or streamed.

Every connection starts on :class:`FastConnection`, a bare :class:`asyncio.Protocol`. It
serves a request itself only when it is the common case: ``POST /v1/chat/completions``
over HTTP/1.1 with a ``Content-Length`` body (within ``limits.max_receive_message_bytes``)
that is a JSON object, well-formed headers, none repeated, and no ``Transfer-Encoding``,
``Expect`` or ``Upgrade``. Anything else (the other routes, chunked bodies, malformed
requests, refusals at the concurrency limit) is handed, with the bytes read so far, to
aiohttp's own protocol for the rest of the connection, so every other behaviour stays
aiohttp's. The answer of the common case is the same ``chat.completion``, SSE stream
(``"stream": true``, chunked, as aiohttp frames it) or error, with the same status and
headers, built by the same :class:`~policyd.server.openai.app.FrontDoor` methods; only
aiohttp's request and response objects, its header multidicts and its per-request tasks
are skipped (``docs/openai.md`` has the measurement).

Keep-alive and pipelining are served in order; ``Connection: close`` closes after the
answer; a connection idle for ``KEEPALIVE_S`` is closed, as aiohttp does; a client that
goes away cancels its request, as aiohttp's ``handler_cancellation`` does. A stream's
deltas are written from the engine's own call as they come (:class:`LeanStream`), with no
queue and no second task between the upstream and the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Literal, Protocol

import orjson
from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from policyd.config.security import LimitsConfig
from policyd.server.openai import sse
from policyd.server.openai.errors import Reply, http_error, reply_of

log = logging.getLogger(__name__)

REQUEST_LINE = b"POST /v1/chat/completions HTTP/1.1\r\n"
MAX_HEAD = 8190
"""aiohttp's own line limit; a longer head goes to aiohttp, which decides."""
KEEPALIVE_S = 75.0
"""aiohttp's default keep-alive timeout."""
SWEEP_S = 15.0
_FIELD = re.compile(r"(?<![^\n])([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f-\xff]*?)[ \t]*\r\n")
"""A whole header line: a token, a colon, a visible ASCII value; a head with any other line goes to aiohttp."""
_HANDED_OFF = ("transfer-encoding", "expect", "upgrade")
_STATUS = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_SERVER = f"Server: {SERVER_SOFTWARE}\r\n".encode()


class Door(Protocol):
    """What the lean path needs of the door (:class:`~policyd.server.openai.app.FrontDoor`)."""

    def limits(self) -> LimitsConfig: ...

    def at_limit(self) -> bool: ...

    async def chat_fast(self, request: RawRequest, body: dict[str, Any]) -> Reply: ...

    async def chat_stream_fast(
        self, request: RawRequest, body: dict[str, Any], out: sse.StreamOut
    ) -> Reply | bytes: ...

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse: ...


class Headers(dict[str, str]):
    """A request's headers by lower-case name (none repeated, so each has one value)."""

    def getall(self, name: str, default: list[str]) -> list[str]:
        value = self.get(name)
        return default if value is None else [value]


class RawRequest:
    """What the door reads of a request on the lean path (the subset of aiohttp's it uses)."""

    __slots__ = ("headers", "transport")
    method = "POST"
    path = "/v1/chat/completions"

    def __init__(self, headers: Headers, transport: asyncio.Transport) -> None:
        self.headers = headers
        self.transport = transport


class _Date:
    """The ``Date`` header line, formatted once a second."""

    def __init__(self) -> None:
        self.second = 0
        self.line = b""

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
        return self.line


_date = _Date()


def render(reply: Reply, close: bool) -> bytes:
    """Status line, headers and body of an answer, as aiohttp writes a ``web.Response`` with a JSON body."""
    status, headers, body = reply
    head = [_STATUS.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode(), _SERVER, _date()]
    head.append(b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body))
    if headers:
        text = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if text.count("\n") != len(headers) or text.count("\r") != len(headers):
            raise ValueError("a response header holds a line break")
        head.append(text.encode("latin-1"))
    if close:
        head.append(b"Connection: close\r\n")
    head.append(b"\r\n")
    head.append(body)
    return b"".join(head)


def stream_head(request_id: str, close: bool) -> bytes:
    """Status line and headers of a stream, as aiohttp writes a prepared ``web.StreamResponse``."""
    text = "".join(f"{name}: {value}\r\n" for name, value in sse.headers(request_id).items())
    if "\n" in request_id or "\r" in request_id:
        raise ValueError("a response header holds a line break")
    head = [_STATUS[200], text.encode("latin-1"), b"Transfer-Encoding: chunked\r\n", _date(), _SERVER]
    if close:
        head.append(b"Connection: close\r\n")
    head.append(b"\r\n")
    return b"".join(head)


class LeanStream:
    """One stream's bytes on a lean connection, chunked (see :class:`sse.StreamOut`).

    The first delta goes out at once with the head; the deltas that follow within one pass
    of the event loop (a burst read from the upstream) go out in one write. Nothing waits
    on a slow client: its events wait in the transport's buffer, as they waited in the
    queue of aiohttp's path, and the upstream call goes on (the answer is bounded by its
    tokens).
    """

    __slots__ = ("close", "conn", "head", "pending", "started")

    def __init__(self, conn: FastConnection, close: bool) -> None:
        self.conn = conn
        self.close = close
        self.started = False
        self.head = b""
        self.pending: list[bytes] = []

    def open(self, request_id: str) -> None:
        self.head = stream_head(request_id, self.close)

    def write(self, data: bytes) -> None:
        if not self.started:
            self.started = True
            self._send(self.head + b"%x\r\n%b\r\n" % (len(data), data))
            return
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending.append(data)

    def flush(self) -> None:
        if self.pending:
            data = b"".join(self.pending)
            self.pending.clear()
            self._send(b"%x\r\n%b\r\n" % (len(data), data))

    def end(self, data: bytes) -> bytes:
        """The stream's last bytes: the head if it is not out yet, what is pending, ``data``, the last chunk."""
        head, self.started = (b"" if self.started else self.head), True
        data = b"".join([*self.pending, data])
        self.pending.clear()
        return b"%b%x\r\n%b\r\n0\r\n\r\n" % (head, len(data), data)

    def _send(self, frame: bytes) -> None:
        transport = self.conn.transport
        if transport is not None:  # else the client went away: its request is being cancelled
            transport.write(frame)


class DoorServer(web.Server):
    """aiohttp's low-level server whose connections start on the lean path (:class:`FastConnection`)."""

    def __init__(self, door: Door, **kwargs: Any) -> None:
        super().__init__(door.handle, **kwargs)
        self.door = door
        self.fast: set[FastConnection] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def __call__(self) -> Any:  # aiohttp's sites call the server as their protocol factory
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)
        return FastConnection(self)

    def aiohttp_protocol(self) -> Any:
        return super().__call__()

    def _sweep(self) -> None:
        """Close lean connections idle for longer than the keep-alive timeout."""
        horizon = time.monotonic() - KEEPALIVE_S
        for conn in [c for c in self.fast if c.idle_since is not None and c.idle_since < horizon]:
            conn.close()
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)

    def pre_shutdown(self) -> None:
        super().pre_shutdown()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.fast):
            conn.closing = True
            if conn.idle_since is not None:
                conn.close()

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 (aiohttp's signature)
        """Let requests in progress finish within ``timeout``, then close every connection."""
        fast = list(self.fast)
        await asyncio.gather(super().shutdown(timeout), *(conn.drain(timeout) for conn in fast))


class FastConnection(asyncio.Protocol):
    """One client connection on the lean path, until a request needs aiohttp (then handed over)."""

    def __init__(self, server: DoorServer) -> None:
        self.server = server
        self.door = server.door
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.task: asyncio.Task[None] | None = None
        self.idle_since: float | None = time.monotonic()
        self.closing = False
        self._writable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.fast.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.fast.discard(self)
        self.transport = None
        if self.task is not None:
            self.task.cancel()  # the client went away: abort the upstream calls

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._next()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.task is None:
            self._next()
        elif len(self.buf) > MAX_HEAD and self.transport is not None:
            self.transport.pause_reading()  # pipelined requests wait for the one in progress

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def drain(self, grace_s: float | None) -> None:
        """Shutdown: wait for the request in progress (cancelled after ``grace_s``), then close."""
        task = self.task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), grace_s)
            task.cancel()
        self.close()

    def _next(self) -> None:
        """Start the next buffered request, hand the connection to aiohttp, or wait for more bytes."""
        buf = self.buf
        if not buf or not self._writable or self.transport is None or self.task is not None:
            return
        parsed = self._parse(buf)
        if parsed is None:
            return
        if parsed is False:
            self._hand_off()
            return
        headers, body, size = parsed
        del buf[:size]
        close = self.closing or "close" in headers.get("connection", "").lower()
        self.idle_since = None
        self.task = asyncio.get_running_loop().create_task(
            self._serve(RawRequest(headers, self.transport), body, close)
        )

    def _parse(self, buf: bytearray) -> tuple[Headers, dict[str, Any], int] | Literal[False] | None:
        """(headers, body, bytes used) of a whole common request; None to wait for more; False for aiohttp."""
        if not buf.startswith(REQUEST_LINE):
            return False if len(buf) >= len(REQUEST_LINE) or not REQUEST_LINE.startswith(buf) else None
        end = buf.find(b"\r\n\r\n", len(REQUEST_LINE) - 2)
        if end < 0:
            return False if len(buf) > MAX_HEAD else None
        if end > MAX_HEAD:
            return False
        lines = buf[len(REQUEST_LINE) : end + 2].decode("latin-1")
        fields = _FIELD.findall(lines)
        headers = Headers((name.lower(), value) for name, value in fields)
        if len(headers) != lines.count("\n") or len(headers) != len(fields):
            return False  # a malformed or repeated header: aiohttp's rules apply
        if any(name in headers for name in _HANDED_OFF):
            return False
        length = headers.get("content-length", "")
        if not length.isdigit() or int(length) > self.door.limits().max_receive_message_bytes:
            return False
        size = end + 4 + int(length)
        if len(buf) < size:
            return None
        raw = bytes(buf[end + 4 : size])
        if self.door.at_limit():
            return False
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(body, dict):
            return False
        return headers, body, size

    def _hand_off(self) -> None:
        """The rest of the connection, with what it sent so far, goes to aiohttp's protocol."""
        transport = self.transport
        assert transport is not None
        self.server.fast.discard(self)
        self.transport = None
        handler = self.server.aiohttp_protocol()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        data, self.buf = bytes(self.buf), bytearray()
        handler.data_received(data)
        transport.resume_reading()

    async def _serve(self, request: RawRequest, body: dict[str, Any], close: bool) -> None:
        try:
            if body.get("stream"):
                answer = await self._stream(request, body, close)
            else:
                answer = _rendered(await self.door.chat_fast(request, body), close)
        except Exception:  # only a stream whose head went out raises here (a plain answer is rendered)
            log.exception("a stream on the lean path broke after its head was sent; closing the connection")
            self.close()
            return
        finally:
            self.task = None
        transport = self.transport
        if transport is None:
            return
        transport.write(answer)
        if close or self.closing:
            transport.close()
            return
        self.idle_since = time.monotonic()
        transport.resume_reading()
        self._next()

    async def _stream(self, request: RawRequest, body: dict[str, Any], close: bool) -> bytes:
        """A stream's head and events written as they come; returns its last bytes (or a plain error answer)."""
        out = LeanStream(self, close)
        last = await self.door.chat_stream_fast(request, body, out)
        return out.end(last) if isinstance(last, bytes) else _rendered(last, close)


def _rendered(reply: Reply, close: bool) -> bytes:
    try:
        return render(reply, close)
    except ValueError as exc:
        return render(reply_of(http_error(exc)), close)
