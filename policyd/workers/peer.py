"""The group's wire: newline-delimited JSON over a Unix socket pair, calls in both directions.

A call is ``{"op": ..., "id": n, ...}`` answered by ``{"re": n, ...}``; a notification has no id
and no answer. Handlers may answer at once (a dict: no task, which is what the rate-limit and
budget calls do) or later (an awaitable, run as its own task so a slow call never blocks the others).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Message = dict[str, Any]
Handler = Callable[[str, Message], "Message | Awaitable[Message] | None"]
LINE_LIMIT = 64 * 1024 * 1024


class PeerGone(ConnectionError):
    """The other end of the group link closed (its process exited)."""


_encode = json.JSONEncoder(separators=(",", ":")).encode
"""``json.dumps`` with these separators builds a new encoder per call; one is enough."""


class _Wire(asyncio.Protocol):
    """Splits what arrives into lines and hands each, decoded, to its peer as it comes: no reader
    task and no ``readline`` per message (the rate-limit and budget calls are on a request's path)."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            line, start = buf[start:end], end + 1
            try:
                message = json.loads(line)
            except ValueError as exc:
                self._broken(f"group link read failed: {exc}")
                return
            self.peer._dispatch(message)
        self.buffer = buf[start:]
        if len(self.buffer) > LINE_LIMIT:
            self._broken(f"group link read failed: a line longer than {LINE_LIMIT} bytes")

    def _broken(self, why: str) -> None:
        log.debug("%s", why)
        self.buffer = b""
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.debug("group link read failed: %s", exc)
        self.peer._lost()


class Peer:
    def __init__(self, handle: Handler) -> None:
        self._wire = _Wire(self)
        self._handle = handle
        self._next = 0
        self._waiting: dict[int, asyncio.Future[Message]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()

    @classmethod
    async def open(cls, sock: socket.socket, handle: Handler) -> Peer:
        peer = cls(handle)
        await asyncio.get_running_loop().create_unix_connection(lambda: peer._wire, sock=sock)
        return peer

    def _send(self, message: Message) -> None:
        transport = self._wire.transport
        if self.closed.is_set() or transport is None or transport.is_closing():
            raise PeerGone("the group link is closed")
        transport.write(_encode(message).encode() + b"\n")

    async def call(self, op: str, **args: Any) -> Message:
        """Send ``op`` and wait for its answer; PeerGone when the other end goes away first."""
        self._next += 1
        ident = self._next
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        try:
            self._send({"op": op, "id": ident, **args})
            answer = await future
        finally:
            self._waiting.pop(ident, None)
        if "error" in answer:
            raise RuntimeError(f"group call {op!r} failed: {answer['error']}")
        return answer

    def notify(self, op: str, **args: Any) -> None:
        """Send ``op`` without waiting (PeerGone when the link is closed)."""
        self._send({"op": op, **args})

    async def run(self) -> None:
        """Wait until the other end closes (messages are dispatched as they arrive); by then every
        call still waiting has failed with PeerGone."""
        await self.closed.wait()

    def _lost(self) -> None:
        self.closed.set()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(PeerGone("the other end of the group link exited"))
        self._waiting.clear()

    def _dispatch(self, message: Message) -> None:
        ident = message.pop("re", None)
        if ident is not None:
            future = self._waiting.get(ident)
            if future is not None and not future.done():
                future.set_result(message)
            return
        op, ident = message.pop("op"), message.pop("id", None)
        try:
            answer = self._handle(op, message)
        except Exception as exc:
            log.exception("group call %r failed", op)
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        if isinstance(answer, dict) or answer is None:
            if ident is not None:
                self._reply(ident, answer or {})
            return
        task = asyncio.get_running_loop().create_task(self._later(ident, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _later(self, ident: int | None, pending: Awaitable[Message]) -> None:
        try:
            answer = await pending
        except Exception as exc:
            log.exception("group call failed")
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        if ident is not None:
            self._reply(ident, answer or {})

    def _reply(self, ident: int, answer: Message) -> None:
        with contextlib.suppress(PeerGone, ConnectionError):
            self._send({"re": ident, **answer})

    async def aclose(self) -> None:
        if self._wire.transport is not None:
            self._wire.transport.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.closed.wait(), 5.0)
