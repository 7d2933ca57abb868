"""Upstream faults against the real transport and the engine's retry layer: nothing hangs, budgets hold.

Every test bounds its wall time and counts the requests the fake upstream saw.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from fake_upstream import FakeUpstream, Hang, Json, Raw, Reset, Sse
from policyd_plugins.openai.provider import OpenAIProvider, OpenAISettings

from policyd.config.retries import BreakerConfig, RetriesConfig
from policyd.engine.retry import RetryLayer
from policyd.errors import UpstreamError
from policyd.types import Message, ModelCall, ModelSpec, Role

MODEL = ModelSpec("local-qwen", "local", "qwen3:8b", 0.0, 0.0, 32_768, "apache-2.0", local=True)
OK = {
    "id": "c",
    "object": "chat.completion",
    "model": "qwen3:8b",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}


def chunk(text: str, finish: str | None = None) -> dict[str, object]:
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }


def provider(upstream: FakeUpstream, **timeouts: float) -> OpenAIProvider:
    return OpenAIProvider("local", OpenAISettings(base_url=f"{upstream.url}/v1", timeouts=timeouts))  # type: ignore[arg-type]


def call(timeout_s: float | None = 10.0) -> ModelCall:
    return ModelCall(model=MODEL, messages=(Message(Role.USER, "hi"),), timeout_s=timeout_s)


def no_turn(complete):
    """A provider's ``complete`` as the innermost step of a call chain (which passes the Turn along)."""

    async def inner(_turn, call, on_delta):
        return await complete(call, on_delta)

    return inner


def retrying(**cfg: object) -> RetryLayer:
    settings = RetriesConfig(**cfg)  # type: ignore[arg-type]
    return RetryLayer(lambda: settings)


async def test_upstream_that_accepts_and_never_answers_times_out_at_first_byte(upstream):
    upstream.queue(Hang())
    p = provider(upstream, first_byte_s=0.3)
    started = time.monotonic()
    with pytest.raises(UpstreamError, match=r"no response within 0\.3 s") as info:
        await p.complete(call())
    await p.aclose()
    assert info.value.retryable
    assert 0.25 < time.monotonic() - started < 3.0


async def test_total_timeout_never_exceeds_the_calls_remaining_time(upstream):
    upstream.queue(Hang())
    p = provider(upstream, first_byte_s=60, total_s=60)
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="total timeout"):
        await p.complete(call(timeout_s=0.4))
    await p.aclose()
    assert time.monotonic() - started < 3.0


async def test_stall_mid_stream_ends_with_an_error_after_the_text_already_relayed(upstream):
    upstream.queue(Sse([chunk("Hel"), chunk("lo")], stall_after=2))
    p = provider(upstream, between_chunks_s=0.3)
    deltas: list[str] = []
    started = time.monotonic()
    with pytest.raises(UpstreamError, match=r"stalled for 0\.3 s between chunks"):
        await p.complete(call(), deltas.append)
    await p.aclose()
    assert deltas == ["Hel", "lo"]
    assert time.monotonic() - started < 3.0


async def test_429_with_retry_after_is_waited_out_then_retried_once(upstream):
    upstream.queue(Json({"error": {"message": "slow down"}}, 429, headers={"retry-after-ms": "300"}), Json(OK))
    p = provider(upstream)
    started = time.monotonic()
    resp = await retrying(backoff_base_s=0.01)(None, call(), None, no_turn(p.complete))
    elapsed = time.monotonic() - started
    await p.aclose()
    assert resp.message.content == "ok"
    assert len(upstream.seen) == 2
    assert 0.3 <= elapsed < 3.0


async def test_burst_of_503s_stays_within_the_retry_budget_and_fails_fast(upstream):
    upstream.default = Json({"error": {"message": "overloaded"}}, 503)
    p = provider(upstream)
    layer = retrying(
        max_attempts=3, backoff_base_s=0.05, budget_ratio=0.2, min_retries=3, breaker=BreakerConfig(failures=1000)
    )
    started = time.monotonic()
    results = await asyncio.gather(
        *(layer(None, call(), None, no_turn(p.complete)) for _ in range(20)), return_exceptions=True
    )
    await p.aclose()
    assert all(isinstance(r, UpstreamError) and r.status == 503 for r in results)
    # at most max(3, 20 * 0.2) = 4 calls retry, each twice: 20 first requests + at most 8 extra
    assert 20 < len(upstream.seen) <= 28
    assert time.monotonic() - started < 5.0


async def test_breaker_opens_under_a_burst_and_stops_calling_the_upstream(upstream):
    upstream.default = Json({"error": {"message": "down"}}, 503)
    p = provider(upstream)
    layer = retrying(max_attempts=1, breaker=BreakerConfig(failures=5, open_s=30))
    errors = []
    for _ in range(12):
        with pytest.raises(UpstreamError) as info:
            await layer(None, call(), None, no_turn(p.complete))
        errors.append(str(info.value))
    await p.aclose()
    assert len(upstream.seen) == 5
    assert all("circuit open after 5 consecutive failures" in e for e in errors[5:])


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Raw("{not json", content_type="application/json"), "malformed response: body is not JSON"),
        (Raw('{"choices": "nope"}'), "malformed response: unexpected shape"),
        (Reset(), r"connection to 127\.0\.0\.1:\d+ failed: Connection reset by peer"),
    ],
)
async def test_malformed_bodies_and_resets_are_retryable_and_retried(upstream, fault, message):
    upstream.queue(fault)
    p = provider(upstream)
    with pytest.raises(UpstreamError, match=message) as info:
        await p.complete(call())
    assert info.value.retryable and info.value.status is None
    upstream.queue(fault, Json(OK))
    resp = await retrying(backoff_base_s=0.01)(None, call(), None, no_turn(p.complete))
    await p.aclose()
    assert resp.message.content == "ok"
    assert len(upstream.seen) == 3


async def test_connection_refused_is_retryable_and_quick():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = OpenAIProvider("local", OpenAISettings(base_url=f"http://127.0.0.1:{port}/v1"))
    with pytest.raises(UpstreamError, match=f"cannot connect to 127.0.0.1:{port}") as info:
        await p.complete(call())
    await p.aclose()
    assert info.value.retryable


async def test_client_cancel_aborts_the_upstream_request(upstream):
    upstream.queue(Sse([chunk("a"), 5.0, chunk("b", "stop")]))
    p = provider(upstream)
    first = asyncio.Event()
    task = asyncio.create_task(p.complete(call(), lambda _: first.set()))
    await asyncio.wait_for(first.wait(), 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(upstream.client_gone_event.wait(), 3)
    assert upstream.client_gone == 1
    # the pool is still usable after the abort
    upstream.queue(Json(OK))
    assert (await p.complete(call())).message.content == "ok"
    await p.aclose()
