"""A raw HTTP/1.1 server for the lean client's tests: each request gets the next scripted reply.

A reply is the bytes to write; a list of pieces (bytes written in turn, a float a pause in
seconds) after which the connection stays open for the next request; or a callable given
the writer, after which the connection is closed. The server records each request and counts
connections, and notices a client that leaves before a scripted reply was written in full.
The ``server`` fixture (``conftest.py``) starts one on 127.0.0.1:0; :func:`transport` is a
provider's transport pointed at it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from policyd_plugins.http.settings import HttpSettings
from policyd_plugins.http.transport import HttpTransport

Reply = bytes | list[bytes | float] | Callable[[asyncio.StreamWriter], None]


class RawServer:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed_by_client = 0
        """Connections the client closed (after any reply, or in the middle of a scripted one)."""
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(v for k, v in headers_of(head) if k == "content-length"))
                self.requests.append(head + await reader.readexactly(length))
                reply = self.replies.pop(0)
                if callable(reply):
                    reply(writer)
                    return
                for piece in reply if isinstance(reply, list) else [reply]:
                    if isinstance(piece, float):
                        await asyncio.sleep(piece)
                    else:
                        writer.write(piece)
                        await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed_by_client += 1
        finally:
            writer.close()


def headers_of(head: bytes) -> list[tuple[str, str]]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines if line)]


def transport(server: RawServer, **settings: object) -> HttpTransport:
    return HttpTransport("p", HttpSettings(base_url=f"http://127.0.0.1:{server.port}/v1", **settings))  # type: ignore[arg-type]
