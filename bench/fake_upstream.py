"""A fast fake OpenAI-compatible upstream: raw asyncio HTTP/1.1, pre-encoded bodies, fixed latency.

``POST /v1/chat/completions`` answers a fixed chat.completion (with usage), or, when the
body asks ``"stream": true``, the same answer as 17 ``chat.completion.chunk`` events in
OpenAI's SSE format (a role chunk, 15 content pieces, the finish chunk), then the usage
chunk and ``data: [DONE]``; a request whose body names a model starting with ``fail`` gets
a 503, for ladders with a failing rung. ``--chunk-gap-ms`` spaces the stream's events
(default 0: the whole stream in one write). Keep-alive and pipelining are supported;
everything else about HTTP is not. Runs on uvloop when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json

BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The answer is 42."},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
    },
    separators=(",", ":"),
).encode()
FAIL_BODY = b'{"error":{"message":"overloaded","type":"server_error"}}'


def _response(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: keep-alive\r\n\r\n"
        + body
    )


def _chunk(delta: dict[str, str], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
    chunk = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1767225600,
             "model": "bench-model", "choices": choices, "usage": usage}  # fmt: skip
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


PIECES = ("The", " ", "a", "n", "s", "w", "e", "r", " ", "i", "s", " ", "4", "2", ".")
"""The streamed answer's content pieces: together, the same text as the whole answer."""
STREAM_EVENTS = (
    _chunk({"role": "assistant", "content": ""}),
    *(_chunk({"content": piece}) for piece in PIECES),
    _chunk({}, "stop"),
    _chunk({}, usage={"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}),
    b"data: [DONE]\n\n",
)
"""17 chunks with choices (role, 15 content pieces, finish), the usage chunk, ``[DONE]``."""
STREAM_BODY = b"".join(STREAM_EVENTS)
OK = _response(b"200 OK", BODY)
STREAM = _response(b"200 OK", STREAM_BODY).replace(b"application/json", b"text/event-stream", 1)
STREAM_HEAD = STREAM[: len(STREAM) - len(STREAM_BODY)]
FAIL = _response(b"503 Service Unavailable", FAIL_BODY)
NOT_FOUND = _response(b"404 Not Found", b'{"error":{"message":"not found"}}')


def stream_writes(gap_s: float) -> list[tuple[float, bytes]]:
    """(delay in seconds, bytes) of each write of a streamed answer: one write, or head + event per gap."""
    if gap_s <= 0:
        return [(0.0, STREAM)]
    first = STREAM_HEAD + STREAM_EVENTS[0]
    return [(0.0, first), *((gap_s * i, event) for i, event in enumerate(STREAM_EVENTS[1:], 1))]


class UpstreamProtocol(asyncio.Protocol):
    latency_s = 0.0
    chunk_gap_s = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body = self.buffer[head_end + 4 : end]
            self.buffer = self.buffer[end:]
            self.answer(head.split(b" ", 2)[1] if b" " in head else b"", body)

    def answer(self, path: bytes, body: bytes) -> None:
        if not path.endswith(b"/chat/completions"):
            out = NOT_FOUND
        elif b'"model":"fail' in body or b'"model": "fail' in body:
            out = FAIL
        elif b'"stream":true' in body or b'"stream": true' in body:
            if self.chunk_gap_s > 0:
                for delay, piece in stream_writes(self.chunk_gap_s):
                    self.loop.call_later(self.latency_s + delay, self._write, piece)
                return
            out = STREAM
        else:
            out = OK
        if self.latency_s > 0:
            self.loop.call_later(self.latency_s, self._write, out)
        else:
            self.transport.write(out)

    def _write(self, out: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(out)


async def serve(host: str, port: int, latency_ms: float, chunk_gap_ms: float = 0.0) -> None:
    UpstreamProtocol.latency_s = latency_ms / 1000
    UpstreamProtocol.chunk_gap_s = chunk_gap_ms / 1000
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"fake upstream listening on {host}:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def run_loop(main: object) -> None:
    """uvloop when installed (``pip install policyd[bench]``), else the default loop."""
    try:
        import uvloop

        uvloop.run(main)  # type: ignore[arg-type]
    except ImportError:
        asyncio.run(main)  # type: ignore[arg-type]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency-ms", type=float, default=0.0, help="added before every answer")
    p.add_argument("--chunk-gap-ms", type=float, default=0.0, help="between a streamed answer's events")
    args = p.parse_args()
    run_loop(serve(args.host, args.port, args.latency_ms, args.chunk_gap_ms))


if __name__ == "__main__":
    main()
