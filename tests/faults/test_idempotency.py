"""Caller-set request ids are idempotency keys per tenant: replayed, refused when reused, awaited."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from faultkit import gauge_config, user

from policyd.v1 import policyd_pb2 as pb


def keyed(text: str, request_id: str, **kw: object) -> pb.CompleteRequest:
    """No cache (BYPASS): only idempotency can spare the second upstream call."""
    return user(text, request_id=request_id, cache_mode=pb.CACHE_MODE_BYPASS, **kw)


async def test_the_same_id_and_request_replays_the_first_answer_without_running_it(live, gauge_host, gauge):
    _, _, stub = await live(gauge_config(), host=gauge_host)
    first = await stub.Complete(keyed("hello", "idem-1"))
    again = await stub.Complete(keyed("hello", "idem-1"))

    assert len(gauge.calls) == 1, "the duplicate reached no upstream"
    assert (first.replayed, again.replayed) == (False, True)
    assert again.output.content == first.output.content and again.total_cost_usd == first.total_cost_usd
    assert again.decision_id == first.decision_id
    [row] = (await stub.GetStats(pb.GetStatsRequest())).rows
    assert (row.requests, row.total_cost_usd) == (1, pytest.approx(first.total_cost_usd)), "charged once"


async def test_the_same_id_with_a_different_request_is_already_exists(live, gauge_host, gauge):
    _, _, stub = await live(gauge_config(), host=gauge_host)
    await stub.Complete(keyed("hello", "idem-2"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Complete(keyed("something else", "idem-2"))

    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "request_id 'idem-2' was used for a different request" in (raised.value.details() or "")
    assert len(gauge.calls) == 1


async def test_keys_are_per_tenant(live, gauge_host, gauge):
    _, _, stub = await live(gauge_config(), host=gauge_host)
    a = await stub.Complete(keyed("hello", "idem-3", tenant="acme"))
    b = await stub.Complete(keyed("hello", "idem-3", tenant="globex"))
    assert (a.replayed, b.replayed) == (False, False)
    assert len(gauge.calls) == 2


async def test_concurrent_duplicates_wait_for_the_first(live, gauge_host, gauge):
    _, _, stub = await live(gauge_config(delay_s=0.3), host=gauge_host)
    answers = await asyncio.gather(*(stub.Complete(keyed("slow", "idem-4"), timeout=10) for _ in range(5)))

    assert len(gauge.calls) == 1
    assert sorted(a.replayed for a in answers) == [False, True, True, True, True]
    assert len({a.decision_id for a in answers}) == 1


async def test_a_streamed_duplicate_replays_attempts_text_and_final(live, gauge_host, gauge):
    _, _, stub = await live(gauge_config(text="streamed once"), host=gauge_host)
    first = await stub.Complete(keyed("stream me", "idem-5"))
    events = [e async for e in stub.StreamComplete(keyed("stream me", "idem-5"))]

    kinds = [e.WhichOneof("event") for e in events]
    assert kinds == ["attempt", "delta", "final"]
    assert events[1].delta == "streamed once" and events[-1].final.replayed
    assert events[-1].final.request_id == first.request_id
    assert len(gauge.calls) == 1


async def test_a_failed_first_request_leaves_no_key(live, gauge_host, gauge):
    _, _, stub = await live(gauge_config(extra="limits: {rate: {requests_per_minute: 1}}"), host=gauge_host)
    await stub.Complete(keyed("use the minute", "idem-6a"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Complete(keyed("refused", "idem-6"))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.aio.AioRpcError) as again:  # run again (and refused again), not replayed
        await stub.Complete(keyed("a different request", "idem-6"))
    assert again.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_zero_window_turns_keys_off(live, gauge_host, gauge):
    _, _, stub = await live(gauge_config(extra="limits: {idempotency_window_s: 0}"), host=gauge_host)
    await stub.Complete(keyed("hello", "idem-7"))
    second = await stub.Complete(keyed("hello", "idem-7"))
    assert not second.replayed and len(gauge.calls) == 2
