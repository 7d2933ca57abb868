"""The lean path of the HTTP door (``fast.py``), seen on the wire: what it serves, and what it hands to aiohttp."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from policyd.api import (
    DeltaSink,
    Message,
    ModelCall,
    ModelResponse,
    NoParams,
    ProviderSpec,
    Role,
    UpstreamError,
    Usage,
    hookimpl,
)
from policyd.server.openai.fast import FastConnection
from policyd.testing import make_host
from tests.server.openai.test_openai_errors import BREAKING, SCRIPTED, BreakingPlugin

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


def via_aiohttp(request_bytes: bytes) -> bytes:
    """The same request with a chunked body, which the lean path hands to aiohttp."""
    head, _, body = request_bytes.partition(b"\r\n\r\n")
    head = b"\r\n".join(line for line in head.split(b"\r\n") if not line.lower().startswith(b"content-length"))
    return head + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)


async def test_a_stream_and_the_next_request_are_served_on_the_lean_path(front):
    f = await front()
    reader, writer = await connect(f)
    writer.write(chat("streamed", stream=True) + chat("streamed"))  # pipelined behind the stream
    status, headers, body = await read_response(reader)
    assert status == 200 and headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert body.startswith(b'data: {"id":"chatcmpl-') and body.endswith(b"data: [DONE]\n\n")
    events = [json.loads(e[6:]) for e in body.decode().split("\n\n") if e.startswith("data: {")]
    deltas = [e["choices"][0]["delta"].get("content") for e in events if e["choices"]]
    assert len([d for d in deltas if d]) > 3  # the simulated model streams in pieces, written as they come
    status, headers, body = await read_response(reader)  # the same connection, kept alive
    answer = json.loads(body)
    assert status == 200 and answer["object"] == "chat.completion"
    assert "".join(d for d in deltas if d) == answer["choices"][0]["message"]["content"]  # in order, none lost
    assert lean_connections(f) == 1  # no hand-off to aiohttp
    writer.close()


def _comparable(response: tuple[int, dict[str, str], bytes]) -> tuple[int, list[tuple[str, str]], list[object]]:
    """Status, headers in order and events, without what differs between two runs (date, time, latency, ids)."""
    status, fields, body = response
    headers = [(k, v) for k, v in fields.items() if k != "date"]
    events: list[object] = []
    for event in body.decode().split("\n\n"):
        payload = event.removeprefix("data: ")
        if not payload.startswith("{"):
            events.append(payload)
            continue
        data = json.loads(payload)
        data.pop("created", None)
        for attempt in data.get("policyd", {}).get("attempts", []):
            attempt.pop("latency_ms")
        data.get("policyd", {}).pop("decision_id", None)
        events.append(data)
    return status, headers, events


@pytest.mark.parametrize("close", [False, True])
async def test_a_stream_has_aiohttps_bytes(front, close: bool):
    f = await front(SCRIPTED, {"gpt-oss-120b": "streamed the same way"})
    connection = "Connection: close\r\n" if close else ""
    answers = []
    for n, wrap in enumerate((lambda b: b, via_aiohttp)):
        reader, writer = await connect(f)
        extra = f"x-policyd-request-id: same\r\n{connection}"
        usage = {"include_usage": True}
        writer.write(wrap(chat(f"prompt {n}", extra_headers=extra, stream=True, stream_options=usage)))
        answers.append(await read_response(reader))
        assert lean_connections(f) == (1 if n == 0 and not close else 0)
        if close:
            assert await reader.read() == b""
        writer.close()
    lean, handed = (_comparable(a) for a in answers)
    assert lean == handed
    assert ("x-policyd-request-id", "same") in lean[1] and (("connection", "close") in lean[1]) is close
    assert [e for e in lean[2] if isinstance(e, str)] == ["[DONE]", ""]


async def test_an_error_before_the_first_delta_is_aiohttps_plain_error(front):
    f = await front(SCRIPTED, {"gpt-oss-120b": {"error": "refused"}})
    reader, writer = await connect(f)
    extra = "x-policyd-request-id: failed\r\n"
    writer.write(chat(extra_headers=extra, stream=True))
    lean = await read_response(reader)
    writer.write(via_aiohttp(chat(extra_headers=extra, stream=True)))
    handed = await read_response(reader)
    assert lean[0] == handed[0] == 502
    assert lean[1]["content-type"] == "application/json" and lean[1]["x-policyd-request-id"] == "failed"
    assert json.loads(lean[2]) == json.loads(handed[2])
    writer.close()


async def test_a_stream_broken_midway_ends_with_the_same_error_event_as_on_aiohttp(front):
    host = make_host()
    host.add(BreakingPlugin(), "breaking", version="test", origin="direct")
    f = await front(BREAKING, host=host)
    reader, writer = await connect(f)
    extra = "x-policyd-request-id: broken\r\n"
    writer.write(chat(extra_headers=extra, stream=True))
    lean = _comparable(await read_response(reader))
    writer.write(via_aiohttp(chat(extra_headers=extra, stream=True)))
    handed = _comparable(await read_response(reader))
    assert lean == handed
    assert lean[2][-2]["error"]["code"] == "stream_broken"  # type: ignore[index]
    assert "[DONE]" not in lean[2]
    writer.close()


class StallingProvider:
    """Streams its first words, then waits (for a client that leaves); keeps the calls cancelled."""

    cancelled: ClassVar[list[str]] = []

    def __init__(self, name: str, settings: NoParams) -> None:
        self.name = name

    async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
        if on_delta is not None:
            on_delta("first words, ")
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            StallingProvider.cancelled.append(call.model.id)
            raise
        raise UpstreamError(self.name, "no client waited this long", retryable=False)

    async def aclose(self) -> None:
        return None


async def front_with(front, kind: str, factory: Callable[..., Any]):
    """A daemon whose one model answers through a provider kind registered for this test."""

    class Plugin:
        POLICYD_API = "1.0"

        @hookimpl
        def policyd_register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
            register(ProviderSpec(kind=kind, factory=factory, settings=NoParams))

    host = make_host()
    host.add(Plugin(), kind, version="test", origin="direct")
    return await front(BREAKING.replace("breaking", kind), host=host)


async def test_a_client_leaving_mid_stream_cancels_the_upstream_call(front):
    StallingProvider.cancelled.clear()
    f = await front_with(front, "stalling", StallingProvider)
    reader, writer = await connect(f)
    writer.write(chat(stream=True))
    assert (await reader.readuntil(b"first words, ")).startswith(b"HTTP/1.1 200 OK\r\n")
    assert lean_connections(f) == 1 and f.http.door.in_flight == 1
    writer.close()
    await until(lambda: StallingProvider.cancelled)
    assert StallingProvider.cancelled == ["gpt-oss-120b"]
    await until(lambda: not f.http.door.in_flight)
    assert f.http.door.in_flight == 0


class SurrogateProvider(StallingProvider):
    """Streams a piece of text that JSON cannot carry (a lone surrogate), then answers."""

    async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
        if on_delta is not None:
            on_delta("broken \ud800")
        return ModelResponse(message=Message(role=Role.ASSISTANT, content="fine"), usage=Usage(1, 1))


async def test_a_delta_json_cannot_carry_is_the_same_500_as_on_aiohttp(front):
    f = await front_with(front, "surrogate", SurrogateProvider)
    reader, writer = await connect(f)
    writer.write(chat("one", stream=True))
    lean = await read_response(reader)
    writer.write(via_aiohttp(chat("two", stream=True)))
    handed = await read_response(reader)
    assert lean[0] == handed[0] == 500
    errors = [json.loads(answer[2])["error"] for answer in (lean, handed)]
    assert [e.pop("message").split(" (incident ")[0] for e in errors] == ["internal error"] * 2
    assert errors[0] == errors[1] == {"type": "server_error", "param": None, "code": "internal"}
    writer.close()


class LateSurrogateProvider(StallingProvider):
    """Streams a first piece, then text that JSON cannot carry."""

    async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
        if on_delta is not None:
            on_delta("a good start, ")
            await asyncio.sleep(0)
            on_delta("then \ud800")
        return ModelResponse(message=Message(role=Role.ASSISTANT, content="fine"), usage=Usage(1, 1))


async def test_a_stream_that_breaks_after_its_head_closes_the_connection_unfinished(front):
    f = await front_with(front, "late-surrogate", LateSurrogateProvider)
    reader, writer = await connect(f)
    writer.write(chat(stream=True))
    wire = await reader.read(-1)  # until the server closes
    assert wire.startswith(b"HTTP/1.1 200 OK\r\n") and b"a good start, " in wire
    assert not wire.endswith(b"0\r\n\r\n")  # no last chunk: a client cannot take it for a whole answer
    assert lean_connections(f) == 0
    writer.close()


async def test_shutdown_lets_a_lean_stream_finish_then_closes(front):
    f = await front(SCRIPTED, {"gpt-oss-120b": {"text": "in time", "delay_ms": 300}})
    reader, writer = await connect(f)
    writer.write(chat(stream=True))
    await until(lambda: f.http.door.in_flight)
    shutdown = asyncio.create_task(f.http.shutdown())
    status, _, body = await read_response(reader)
    assert status == 200 and b'"content":"in time"' in body and body.endswith(b"data: [DONE]\n\n")
    assert await reader.read() == b""
    await shutdown
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
    writer.write(via_aiohttp(chat(temperature=3.5)))
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
@pytest.mark.parametrize("stream", [False, True])
async def test_a_bad_body_gets_the_same_answer_as_on_aiohttp(front, body: dict[str, object], stream: bool):
    f = await front()
    reader, writer = await connect(f)
    writer.write(raw_chat({**body, "stream": stream}))
    lean = await read_response(reader)
    writer.write(via_aiohttp(raw_chat({**body, "stream": stream})))
    handed = await read_response(reader)
    assert 400 <= lean[0] < 500
    assert (lean[0], json.loads(lean[2])) == (handed[0], json.loads(handed[2]))
    writer.close()
