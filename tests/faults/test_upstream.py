"""Upstream faults through the assembled daemon: real HTTP to the providers' fake OpenAI-compatible server.

The providers' own suite (tests/plugins/test_faults.py, test_live_openai.py) covers each
fault at the transport and a stall or cancel mid-stream through a live daemon; these add
what only the whole daemon shows: fallback after a silent upstream, a unary cancel, a
short deadline, Retry-After end to end, and the retry budget under concurrent load.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import grpc.aio
import pytest
from faultkit import until, user
from upstreams import completion, openai_policy

from policyd.v1 import policyd_pb2 as pb
from tests.plugins.fake_upstream import Hang, Json


def _paths(fake) -> list[str]:
    return [s.path for s in fake.seen]


async def test_an_upstream_that_accepts_and_never_answers_is_abandoned_for_the_fallback(live, fake):
    fake.queue(Hang(), Hang(), Json(completion("from the spare")))
    _, _, stub = await live(openai_policy(fake.url, first_byte_s=0.3))
    started = time.monotonic()
    resp = await stub.Complete(user("hello", task="fallback"), timeout=10)
    assert time.monotonic() - started < 3
    assert resp.output.content == "from the spare" and resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    assert "no response within 0.3 s" in resp.attempts[0].error
    assert _paths(fake) == ["/v1/chat/completions"] * 2 + ["/spare/v1/chat/completions"]
    await asyncio.wait_for(_gone(fake, 2), 5)


async def _gone(fake, n: int) -> None:
    while fake.client_gone < n:
        await fake.client_gone_event.wait()
        fake.client_gone_event.clear()


async def test_a_client_cancel_mid_request_aborts_the_upstream_request(live, fake):
    fake.queue(Json(completion("late"), delay_s=30))
    _, _, stub = await live(openai_policy(fake.url))
    call = stub.Complete(user("hello"), timeout=30)
    await until(lambda: bool(fake.seen), 5, "the upstream request")
    call.cancel()
    await asyncio.wait_for(fake.client_gone_event.wait(), 5)
    assert fake.client_gone == 1 and len(fake.seen) == 1


async def test_a_deadline_shorter_than_the_upstream_latency_ends_in_time_and_cuts_the_call(live, fake):
    fake.queue(Json(completion("too slow"), delay_s=3))
    _, _, stub = await live(openai_policy(fake.url))
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(user("hurry"), timeout=0.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 1.5
    await asyncio.wait_for(fake.client_gone_event.wait(), 5)
    assert len(fake.seen) == 1, "no retry past the deadline"


async def test_429_with_retry_after_is_waited_out_then_answered(live, fake):
    fake.queue(Json({"error": {"message": "slow down"}}, 429, headers={"Retry-After": "1"}), Json(completion("now")))
    _, _, stub = await live(openai_policy(fake.url))
    started = time.monotonic()
    resp = await stub.Complete(user("hello"), timeout=10)
    elapsed = time.monotonic() - started
    assert resp.output.content == "now" and len(fake.seen) == 2
    assert 0.95 <= elapsed < 4, elapsed


async def test_every_provider_answering_503_under_load_stays_within_the_retry_budget(live, fake):
    fake.default = Json({"error": {"message": "overloaded"}}, 503, delay_s=0.02)
    _, _, stub = await live(openai_policy(fake.url, max_attempts=3))
    n = 30
    started = time.monotonic()
    responses = await asyncio.gather(*(stub.Complete(user(f"p{i}", task="fallback"), timeout=20) for i in range(n)))
    assert time.monotonic() - started < 10
    assert all(r.status == pb.OUTCOME_STATUS_UPSTREAM_FAILED for r in responses)
    assert all(len(r.attempts) == 2 and all("HTTP 503" in a.error for a in r.attempts) for r in responses)
    first_tries = 2 * n  # one per provider per request
    # Without a budget every call would be tried 3 times (180 requests). With it, at most
    # max(2, 10% of the calls in flight) calls retry at once.
    assert first_tries < len(fake.seen) <= first_tries + 24, len(fake.seen)
    budget_denied = sum("retry budget exhausted" in a.error for r in responses for a in r.attempts)
    assert budget_denied >= first_tries - 24
