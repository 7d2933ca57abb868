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


class Peer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handle: Handler) -> None:
        self._reader = reader
        self._writer = writer
        self._handle = handle
        self._next = 0
        self._waiting: dict[int, asyncio.Future[Message]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()

    @classmethod
    async def open(cls, sock: socket.socket, handle: Handler) -> Peer:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=LINE_LIMIT)
        return cls(reader, writer, handle)

    def _send(self, message: Message) -> None:
        if self.closed.is_set() or self._writer.is_closing():
            raise PeerGone("the group link is closed")
        self._writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

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
        """Read and dispatch until the other end closes; then fail every call still waiting."""
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                self._dispatch(json.loads(line))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            log.debug("group link read failed: %s", exc)
        finally:
            self.closed.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(PeerGone("the other end of the group link exited"))
            self._waiting.clear()
            with contextlib.suppress(Exception):
                self._writer.close()

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
        with contextlib.suppress(Exception):
            self._writer.close()
            await self._writer.wait_closed()
