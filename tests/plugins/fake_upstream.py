"""A scriptable fake upstream: a real aiohttp server on 127.0.0.1 that records every request.

Each test queues replies (JSON, an event stream, a status, a hang, a stall, a reset,
a malformed body); the server answers requests with them in order, then with the
``default`` reply. It records what each request carried (path, query, headers, JSON
body) and notices when a client goes away mid-answer.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-cased names."""
    body: Any
    raw_url: str


@dataclass
class Json:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Raw:
    text: str
    status: int = 200
    content_type: str = "application/json"


@dataclass
class Sse:
    events: list[Any]
    """Each item: a dict (sent as ``data: <json>``), a raw SSE string, or a float (a pause in seconds)."""
    status: int = 200
    stall_after: int | None = None
    """Stop sending (but keep the connection open) after this many items."""


@dataclass
class Hang:
    """Accept the request and never answer."""


@dataclass
class Reset:
    """Reset the TCP connection without answering."""


def sse_data(obj: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(obj)}\n\n"


class FakeUpstream:
    def __init__(self) -> None:
        self.replies: list[Any] = []
        self.default: Any = Json({"error": {"message": "no reply queued"}}, status=500)
        self.seen: list[Seen] = []
        self.client_gone = 0
        """Requests whose client disconnected before the answer was complete."""
        self.client_gone_event = asyncio.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self, *replies: Any) -> None:
        self.replies.extend(replies)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.seen.append(
            Seen(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                raw_url=str(request.url),
            )
        )
        reply = self.replies.pop(0) if self.replies else self.default
        try:
            return await self._answer(request, reply)
        except (asyncio.CancelledError, ConnectionResetError):
            self.client_gone += 1
            self.client_gone_event.set()
            raise

    async def _answer(self, request: web.Request, reply: Any) -> web.StreamResponse:
        if isinstance(reply, Json):
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        if isinstance(reply, Raw):
            return web.Response(text=reply.text, status=reply.status, content_type=reply.content_type)
        if isinstance(reply, Hang):
            await asyncio.sleep(3600)
        if isinstance(reply, Reset):
            transport = request.transport
            assert transport is not None
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
            return web.Response(status=500)
        assert isinstance(reply, Sse), reply
        resp = web.StreamResponse(status=reply.status, headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, item in enumerate(reply.events):
            if reply.stall_after is not None and i >= reply.stall_after:
                await asyncio.sleep(3600)
            if isinstance(item, (int, float)):
                await asyncio.sleep(item)
                continue
            text = item if isinstance(item, str) else sse_data(item)
            await resp.write(text.encode())
        if reply.stall_after is not None:
            await asyncio.sleep(3600)
        await resp.write_eof()
        return resp
