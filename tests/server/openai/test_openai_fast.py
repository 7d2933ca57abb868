"""The lean path of the HTTP door (``fast.py``), seen on the wire: what it serves, and what it hands to aiohttp."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from policyd.server.openai.fast import FastConnection
from tests.server.openai.test_openai_errors import SCRIPTED

CHAT = "/v1/chat/completions"
CHUNKED = json.dumps({"model": "default", "messages": [{"role": "user", "content": "chunked"}]}).encode()


def chat(content: str = "hi", *, extra_headers: str = "", **fields: object) -> bytes:
    body = json.dumps({"model": "default", "messages": [{"role": "user", "content": content}], **fields}).encode()
    head = f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra_headers}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (Content-Length or chunked body), headers by lower-case name."""
    status_line = await reader.readuntil(b"\r\n")
    headers: dict[str, str] = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
    else:
        body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


async def connect(f) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", f.http.port)


async def until(condition: Callable[[], object], timeout_s: float = 2.0) -> None:
    """Poll ``condition`` every 10 ms until it holds or ``timeout_s`` passes (the caller asserts)."""
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)


def lean_connections(f) -> int:
    return len(f.http.runner.server.fast)


async def test_pipelined_requests_on_one_connection_are_answered_in_order(front):
    f = await front()
    reader, writer = await connect(f)
    writer.write(chat("one") + chat("two", extra_headers="x-policyd-request-id: second\r\n"))
    first, second = await read_response(reader), await read_response(reader)
    assert [first[0], second[0]] == [200, 200]
    assert json.loads(first[2])["choices"][0]["message"]["content"]
    assert second[1]["x-policyd-request-id"] == "second"
    assert json.loads(second[2])["id"] == "chatcmpl-second"
    for _, headers, body in (first, second):
        assert headers["content-type"] == "application/json"
        assert headers["content-length"] == str(len(body))
        assert headers["date"].endswith("GMT") and "aiohttp" in headers["server"]
        assert headers["x-policyd-status"] == "accepted-unvalidated"
    assert lean_connections(f) == 1  # both served without aiohttp
    writer.close()


async def test_connection_close_is_honoured(front):
    f = await front()
    reader, writer = await connect(f)
    writer.write(chat(extra_headers="Connection: close\r\n"))
    status, headers, _ = await read_response(reader)
    assert (status, headers["connection"]) == (200, "close")
    assert await reader.read() == b""  # the server closed its end
    writer.close()


async def test_a_stream_hands_the_connection_to_aiohttp_which_serves_the_rest(front):
    f = await front()
    reader, writer = await connect(f)
    writer.write(chat("lean"))
    assert (await read_response(reader))[0] == 200
    assert lean_connections(f) == 1
    writer.write(chat("streamed", stream=True))
    status, headers, body = await read_response(reader)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert body.endswith(b"data: [DONE]\n\n")
    assert lean_connections(f) == 0
    writer.write(chat("after"))  # the same connection, now aiohttp's
    status, headers, body = await read_response(reader)
    assert status == 200 and json.loads(body)["object"] == "chat.completion"
    writer.close()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        (chat(extra_headers="Bad Header: 1\r\n"), 400),  # a space in a name: aiohttp refuses it
        (chat(extra_headers="Authorization: Bearer a\r\nauthorization: Bearer b\r\n"), 200),  # repeated
        (
            b"POST "
            + CHAT.encode()
            + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(CHUNKED), CHUNKED),
            200,
        ),
        (chat().replace(b'"messages"', b'"messages" :', 1).replace(b"}]}", b"}]", 1), 400),  # not JSON
    ],
    ids=["other-route", "malformed-header", "repeated-header", "chunked-body", "invalid-json"],
)
async def test_requests_off_the_common_path_get_aiohttp_answers(front, request_bytes: bytes, status: int):
    f = await front()
    reader, writer = await connect(f)
    writer.write(request_bytes)
    got, _, body = await read_response(reader)
    assert got == status, body
    assert lean_connections(f) == 0
    writer.close()


async def test_an_invalid_field_is_the_same_error_as_on_aiohttp(front):
    f = await front()
    reader, writer = await connect(f)
    writer.write(chat(temperature=3.5))
    lean = await read_response(reader)
    writer.write(chat(temperature=3.5, stream=False))  # "stream" in the body: aiohttp's path
    handed = await read_response(reader)
    assert lean[0] == handed[0] == 400
    assert json.loads(lean[2]) == json.loads(handed[2])
    assert json.loads(lean[2])["error"]["param"] == "temperature"
    writer.close()


async def test_a_line_break_in_a_response_header_is_a_500_not_an_injected_header(front):
    f = await front()
    reader, writer = await connect(f)
    writer.write(chat(metadata={"policyd_request_id": "a\r\nx-injected: 1"}))
    status, headers, body = await read_response(reader)
    assert status == 500 and "x-injected" not in headers
    assert json.loads(body)["error"]["type"] == "server_error"
    writer.close()


async def test_a_client_going_away_cancels_a_lean_request(front):
    f = await front(SCRIPTED, {"gpt-oss-120b": {"text": "slow", "delay_ms": 5000}})
    provider = f.daemon.engine.runtime.providers["scripted"]
    if f.daemon.cache is not None:  # the shards open in the background: the request must reach the provider
        await asyncio.to_thread(f.daemon.cache.store.wait_open)
    _, writer = await connect(f)
    writer.write(chat())
    await until(lambda: f.http.door.in_flight)
    assert f.http.door.in_flight == 1
    writer.close()
    await until(lambda: provider.cancelled)  # type: ignore[attr-defined]
    assert len(provider.cancelled) == 1  # type: ignore[attr-defined]
    assert f.http.door.in_flight == 0


async def test_shutdown_lets_a_lean_request_finish_then_closes(front):
    f = await front(SCRIPTED, {"gpt-oss-120b": {"text": "in time", "delay_ms": 300}})
    reader, writer = await connect(f)
    idle_reader, idle_writer = await connect(f)
    writer.write(chat())
    await until(lambda: f.http.door.in_flight)
    shutdown = asyncio.create_task(f.http.shutdown())
    status, _, body = await read_response(reader)
    assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == "in time"
    assert await reader.read() == b"" and await idle_reader.read() == b""
    await shutdown
    writer.close()
    idle_writer.close()


async def test_idle_lean_connections_are_closed_after_the_keepalive_timeout(front, monkeypatch):
    f = await front()
    reader, writer = await connect(f)
    writer.write(chat())
    assert (await read_response(reader))[0] == 200
    (conn,) = f.http.runner.server.fast
    assert isinstance(conn, FastConnection) and conn.idle_since is not None
    monkeypatch.setattr("policyd.server.openai.fast.KEEPALIVE_S", 0.0)
    f.http.runner.server._sweep()
    assert await reader.read() == b""
    writer.close()


def raw_chat(body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    return f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "user", "content": "no model"}]},
        {"model": 5, "messages": [{"role": "user", "content": "a number"}]},
        {"model": "default"},
        {"model": "default", "messages": "not a list"},
        {"model": "default", "messages": [{"role": "wizard", "content": "x"}]},
        {"model": "default", "messages": [{"role": "user", "content": "x"}], "max_tokens": "many"},
        {"model": "no-such-policy", "messages": [{"role": "user", "content": "x"}]},
    ],
)
async def test_a_bad_body_gets_the_same_answer_as_on_aiohttp(front, body: dict[str, object]):
    f = await front()
    reader, writer = await connect(f)
    writer.write(raw_chat(body))
    lean = await read_response(reader)
    writer.write(raw_chat({**body, "stream": False}))  # "stream" in the body: aiohttp's path
    handed = await read_response(reader)
    assert 400 <= lean[0] < 500
    assert (lean[0], json.loads(lean[2])) == (handed[0], json.loads(handed[2]))
    writer.close()
