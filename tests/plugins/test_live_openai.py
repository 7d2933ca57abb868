"""End to end: a live grpc.aio daemon whose config points an openai-compatible provider at a fake server."""

from __future__ import annotations

import asyncio
import math
import time

import grpc
from fake_upstream import FakeUpstream, Hang, Json, Sse

from policyd.v1 import policyd_pb2 as pb

CONFIG = """
providers:
  local: {{kind: openai-compatible, base_url: "{url}/v1", timeouts: {{first_byte_s: 5, between_chunks_s: 0.5}}}}
  simulated: {{kind: simulated, latency_scale: 0.0}}
retries: {{max_attempts: 2, backoff_base_s: 0.01, breaker: {{failures: 100}}}}
models:
  local-qwen:
    provider: local
    upstream: "qwen3:8b"
    input_usd_per_mtok: 0.1
    output_usd_per_mtok: 0.4
    context_window: 32768
    license: apache-2.0
    local: true
    thinking: true
    options: {{thinking_flag: enable_thinking}}
policies:
  default:
    rules:
      - name: with-fallback
        match: {{tasks: [fallback]}}
        plan: {{strategy: fallback, params: {{models: [local-qwen, gpt-oss-120b]}}}}
      - name: local
        plan: {{strategy: single, params: {{model: local-qwen}}}}
"""


def chunk(text: str, finish: str | None = None) -> dict[str, object]:
    return {
        "object": "chat.completion.chunk",
        "model": "qwen3:8b",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }


def user(text: str, **kw: object) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)


async def read_stream(call: object) -> tuple[list[pb.StreamCompleteResponse], grpc.aio.AioRpcError | None]:
    events: list[pb.StreamCompleteResponse] = []
    try:
        async for event in call:  # type: ignore[attr-defined]
            events.append(event)
    except grpc.aio.AioRpcError as exc:
        return events, exc
    return events, None


def kinds(events: list[pb.StreamCompleteResponse], kind: str) -> list[object]:
    return [getattr(e, kind) for e in events if e.WhichOneof("event") == kind]


async def test_complete_through_the_daemon_prices_real_usage_from_the_catalog(live, upstream: FakeUpstream):
    upstream.queue(
        Json(
            {
                "model": "qwen3:8b",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "Hi there"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 500},
            }
        )
    )
    _, _, stub = await live(CONFIG.format(url=upstream.url))
    resp = await stub.Complete(user("hello"), timeout=10)
    assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    assert resp.output.content == "Hi there"
    [attempt] = resp.attempts
    assert (attempt.model, attempt.provider, attempt.input_tokens, attempt.output_tokens) == (
        "local-qwen",
        "local",
        1000,
        500,
    )
    assert math.isclose(attempt.cost_usd, (1000 * 0.1 + 500 * 0.4) / 1e6)
    assert not attempt.usage_estimated
    body = upstream.seen[0].body
    assert body["model"] == "qwen3:8b" and body["chat_template_kwargs"] == {"enable_thinking": False}


async def test_stream_complete_relays_upstream_chunks_as_they_arrive(live, upstream: FakeUpstream):
    upstream.queue(
        Sse(
            [
                chunk("Hel"),
                0.05,
                chunk("lo, "),
                0.05,
                chunk("world", "stop"),
                {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3}},
                "data: [DONE]\n\n",
            ]
        )
    )
    _, _, stub = await live(CONFIG.format(url=upstream.url))
    events, error = await read_stream(stub.StreamComplete(user("hello"), timeout=10))
    assert error is None
    assert kinds(events, "delta") == ["Hel", "lo, ", "world"]
    [final] = kinds(events, "final")
    assert final.output.content == "Hello, world"  # type: ignore[attr-defined]
    assert [(a.input_tokens, a.output_tokens) for a in final.attempts] == [(4, 3)]  # type: ignore[attr-defined]
    assert events[-1].WhichOneof("event") == "final"


async def test_failure_after_the_first_chunk_ends_the_stream_with_an_error_and_no_fallback(
    live, upstream: FakeUpstream
):
    upstream.queue(Sse([chunk("Hel"), chunk("lo")], stall_after=2))
    _, _, stub = await live(CONFIG.format(url=upstream.url))
    started = time.monotonic()
    events, error = await read_stream(stub.StreamComplete(user("hello", task="fallback"), timeout=10))
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
    assert "broke after it started" in (error.details() or "") and "stalled" in (error.details() or "")
    assert kinds(events, "delta") == ["Hel", "lo"]
    assert kinds(events, "final") == [], "never a clean end with truncated text"
    assert [a.model for a in kinds(events, "attempt")] == ["local-qwen"]  # type: ignore[attr-defined]
    assert len(upstream.seen) == 1, "no retry once text was streamed"
    assert time.monotonic() - started < 5


async def test_failures_before_the_first_chunk_are_retried_then_fall_back(live, upstream: FakeUpstream):
    upstream.default = Json({"error": {"message": "overloaded"}}, 503)
    _, _, stub = await live(CONFIG.format(url=upstream.url))
    events, error = await read_stream(stub.StreamComplete(user("hello", task="fallback"), timeout=10))
    assert error is None
    [final] = kinds(events, "final")
    assert final.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED  # type: ignore[attr-defined]
    attempts = final.attempts  # type: ignore[attr-defined]
    assert [a.model for a in attempts] == ["local-qwen", "gpt-oss-120b"]
    assert attempts[0].error.endswith("HTTP 503 (after 2 attempts; 2 attempts made): overloaded")
    assert len(upstream.seen) == 2
    assert "".join(kinds(events, "delta")) == final.output.content  # type: ignore[attr-defined]


async def test_client_cancel_aborts_the_upstream_request(live, upstream: FakeUpstream):
    upstream.queue(Sse([chunk("first"), 10.0, chunk("never", "stop")]))
    _, _, stub = await live(CONFIG.format(url=upstream.url))
    call = stub.StreamComplete(user("hello"), timeout=30)
    first = await call.read()
    assert first.WhichOneof("event") in ("delta", "attempt")
    call.cancel()
    await asyncio.wait_for(upstream.client_gone_event.wait(), 5)
    assert upstream.client_gone == 1


async def test_hanging_upstream_ends_at_the_rpc_deadline(live, upstream: FakeUpstream):
    upstream.queue(Hang())
    _, _, stub = await live(CONFIG.format(url=upstream.url))
    started = time.monotonic()
    try:
        await stub.Complete(user("hello"), timeout=1.0)
        raise AssertionError("expected DEADLINE_EXCEEDED")
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3
    await asyncio.wait_for(upstream.client_gone_event.wait(), 5)
