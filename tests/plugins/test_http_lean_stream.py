"""Event streams over the lean keep-alive client, against a raw HTTP/1.1 server.

The server's bytes are scripted exactly (framings, pauses, cuts); each test checks what
``HttpTransport.post_sse`` hands over, the error a caller sees, and what becomes of the
connection: reused after a stream read to its end, closed after one left early.
"""

from __future__ import annotations

import asyncio
import itertools
import zlib

import pytest
from policyd_plugins.http.sse import SseEvent
from policyd_plugins.http.transport import HttpTransport
from policyd_plugins.openai.provider import OpenAIProvider, OpenAISettings
from raw_server import RawServer, headers_of, transport

from policyd.errors import UpstreamError
from policyd.types import Message, ModelCall, ModelSpec, Role

EVENTS = b'data: {"n":1}\n\nevent: ping\ndata: {"n":2}\n\ndata: [DONE]\n\n'
WANT = [SseEvent("message", '{"n":1}'), SseEvent("ping", '{"n":2}'), SseEvent("message", "[DONE]")]
SSE_HEAD = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"


def chunked(*pieces: bytes) -> list[bytes]:
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces]


def sized(body: bytes) -> bytes:
    return f"{SSE_HEAD}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def stream(t: HttpTransport, server: RawServer, events: list[SseEvent] | None = None) -> list[SseEvent]:
    got = [] if events is None else events
    await t.post_sse(f"http://127.0.0.1:{server.port}/v1/chat", {"q": 1}, {}, 5.0, got.append)
    return got


def split(data: bytes, *cuts: int) -> list[bytes | float]:
    """``data`` cut at ``cuts``, a short pause between the pieces (each arrives in its own read)."""
    bounds = [0, *cuts, len(data)]
    out: list[bytes | float] = []
    for a, b in itertools.pairwise(bounds):
        out += [data[a:b], 0.01]
    return out


async def test_a_chunked_stream_split_anywhere_hands_over_whole_events_and_keeps_the_connection(server):
    # Events cut across chunks, chunks across reads: inside a size line, its CRLF, an event's data.
    wire = b"".join(chunked(EVENTS[:5], EVENTS[5:30], EVENTS[30:])) + b"0\r\n\r\n"
    head = f"{SSE_HEAD}Transfer-Encoding: chunked\r\n\r\n".encode()
    server.replies = [[head, *split(wire, 1, 4, 9, 20, 31, 40, len(wire) - 3)], sized(EVENTS)]
    t = transport(server)
    assert await stream(t, server) == WANT
    assert await stream(t, server) == WANT, "a Content-Length framed stream too"
    await t.aclose()
    assert server.connections == 1, "both streams over one kept-alive connection"
    sent = server.requests[0].partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert dict(headers_of(sent))["accept"] == "text/event-stream"


async def test_a_gzip_stream_is_inflated_as_it_arrives(server):
    packer = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    packed = (
        packer.compress(EVENTS[:20]) + packer.flush(zlib.Z_SYNC_FLUSH),
        packer.compress(EVENTS[20:]) + packer.flush(),
    )
    head = f"{SSE_HEAD}Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    server.replies = [[head, chunked(packed[0])[0], 0.01, chunked(packed[1])[0], b"0\r\n\r\n"]]
    t = transport(server)
    assert await stream(t, server) == WANT
    await t.aclose()


async def test_a_stream_cut_mid_way_fails_after_the_events_already_handed_over(server):
    head = f"{SSE_HEAD}Transfer-Encoding: chunked\r\n\r\n".encode()
    server.replies = [lambda w: w.write(head + chunked(EVENTS[:15])[0])]
    t = transport(server)
    got: list[SseEvent] = []
    with pytest.raises(UpstreamError, match=r"the response body from 127\.0\.0\.1:\d+ was cut short") as info:
        await stream(t, server, got)
    await t.aclose()
    assert got == WANT[:1] and info.value.retryable


async def test_an_error_event_mid_stream_fails_the_call_after_the_text_already_relayed(server, monkeypatch):
    events = b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    events += b'data: {"error":{"message":"model overloaded","type":"server_error"}}\n\n'
    server.replies = [[f"{SSE_HEAD}Transfer-Encoding: chunked\r\n\r\n".encode(), *chunked(events), b"0\r\n\r\n"]]
    monkeypatch.setenv("TEST_KEY", "sk-test")
    provider = OpenAIProvider(
        "local", OpenAISettings(base_url=f"http://127.0.0.1:{server.port}/v1", api_key_env="TEST_KEY")
    )
    model = ModelSpec(id="m", provider="local", upstream="m", input_usd_per_mtok=1.0, output_usd_per_mtok=1.0,
                      context_window=1000, license="mit")  # fmt: skip
    relayed: list[str] = []
    try:
        with pytest.raises(UpstreamError, match="model overloaded"):
            await provider.complete(
                ModelCall(model=model, messages=(Message(Role.USER, "hi"),), timeout_s=5), relayed.append
            )
    finally:
        await provider.aclose()
    assert relayed == ["Hel"]


async def test_a_stall_between_events_and_a_silent_upstream_time_out_by_phase(server):
    head = f"{SSE_HEAD}Transfer-Encoding: chunked\r\n\r\n".encode()
    server.replies = [[head, chunked(EVENTS[:15])[0], 5.0], [5.0]]
    t = transport(server, timeouts={"between_chunks_s": 0.2, "first_byte_s": 0.2})
    got: list[SseEvent] = []
    with pytest.raises(UpstreamError, match=r"stalled for 0\.2 s between chunks"):
        await asyncio.wait_for(stream(t, server, got), 3)
    assert got == WANT[:1]
    with pytest.raises(UpstreamError, match=r"no response within 0\.2 s"):
        await asyncio.wait_for(stream(t, server), 3)
    await t.aclose()


async def test_a_stream_that_keeps_trickling_stops_at_the_calls_total_time(server):
    head = f"{SSE_HEAD}Transfer-Encoding: chunked\r\n\r\n".encode()
    trickle: list[bytes | float] = [head]
    for _ in range(40):
        trickle += [chunked(b": keep-alive\n\n")[0], 0.05]
    server.replies = [trickle]
    t = transport(server, timeouts={"between_chunks_s": 0.2})
    got: list[SseEvent] = []
    url = f"http://127.0.0.1:{server.port}/v1/chat"
    with pytest.raises(UpstreamError, match=r"no complete answer within 0\.3 s \(total timeout\)"):
        await asyncio.wait_for(t.post_sse(url, {}, {}, 0.3, got.append), 3)
    await t.aclose()
    assert got == [], "comments are no events"


async def test_a_stream_its_caller_leaves_closes_its_connection_and_the_next_call_opens_another(server):
    head = f"{SSE_HEAD}Transfer-Encoding: chunked\r\n\r\n".encode()
    server.replies = [[head, chunked(EVENTS[:15])[0], 1.0, *chunked(EVENTS[15:]), b"0\r\n\r\n"], sized(EVENTS)]
    t = transport(server)
    first = asyncio.Event()
    got: list[SseEvent] = []

    def on_event(event: SseEvent) -> None:
        got.append(event)
        first.set()

    call = asyncio.create_task(t.post_sse(f"http://127.0.0.1:{server.port}/v1/chat", {}, {}, 5.0, on_event))
    await asyncio.wait_for(first.wait(), 3)
    call.cancel()  # the caller went away (a servicer cancels the engine's task)
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await stream(t, server) == WANT
    await t.aclose()
    assert got == WANT[:1]
    assert server.connections == 2, "the abandoned stream's connection was closed, not reused"


async def test_an_error_status_on_a_stream_is_classified_and_its_connection_not_reused(server):
    body = b'{"error": {"message": "slow down"}}'
    server.replies = [
        f"HTTP/1.1 429 Too Many\r\nRetry-After: 2\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body,
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        sized(EVENTS),
    ]
    t = transport(server)
    with pytest.raises(UpstreamError, match="slow down") as info:
        await stream(t, server)
    assert info.value.status == 429 and info.value.retry_after_s == 2.0
    with pytest.raises(UpstreamError, match=r"expected text/event-stream, got application/json \(2 bytes\)"):
        await stream(t, server)
    assert await stream(t, server) == WANT
    await t.aclose()
    assert server.connections == 3


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"5\r\ndata:X\r\n", "a chunk does not end with CRLF"),
        (b"zz\r\n", "bad chunk size"),
        (b"-5\r\n", "bad chunk size"),
    ],
)
async def test_broken_chunk_framing_is_a_malformed_response(server, wire, message):
    server.replies = [f"{SSE_HEAD}Transfer-Encoding: chunked\r\n\r\n".encode() + wire]
    t = transport(server)
    with pytest.raises(UpstreamError, match=f"malformed response: invalid HTTP from 127.0.0.1:\\d+: {message}"):
        await stream(t, server)
    await t.aclose()
