"""The cache through a live daemon: hits, misses, tenants, single-flight, TTL, modes, restarts."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import grpc
import pytest
from cache_helpers import counted_config, user

from policyd.cache.keys import call_key
from policyd.v1 import policyd_pb2 as pb


async def test_repeated_request_is_answered_from_cache_at_cost_zero_with_saving_shown(live, counting_host, upstream):
    _, _, stub = await live(counted_config(), host=counting_host)
    first = await stub.Complete(user("explain binary search"))
    second = await stub.Complete(user("explain binary search"))
    assert len(upstream) == 1
    assert not first.attempts[0].cached and first.total_cost_usd > 0
    hit = second.attempts[0]
    assert hit.cached and hit.cost_usd == 0 and second.total_cost_usd == 0
    assert math.isclose(hit.saved_usd, first.attempts[0].cost_usd, rel_tol=1e-9)
    assert math.isclose(second.saved_usd, first.total_cost_usd, rel_tol=1e-9)
    assert second.output.content == first.output.content
    assert (hit.input_tokens, hit.output_tokens) == (first.attempts[0].input_tokens, first.attempts[0].output_tokens)


async def test_different_temperature_effort_or_tools_miss_and_identical_ones_hit(live, counting_host, upstream):
    _, _, stub = await live(counted_config(), host=counting_host)
    tool = pb.Tool(name="lookup", description="find a word", parameters_json_schema='{"type": "object"}')
    variants = [
        user("same prompt"),
        user("same prompt", params=pb.GenerationParams(temperature=0.2)),
        user("same prompt", params=pb.GenerationParams(temperature=0.7)),
        user("same prompt", tools=[tool]),
        user("same prompt", policy="low"),
        user("same prompt", policy="high"),
    ]
    for msg in variants:
        resp = await stub.Complete(msg)
        assert not resp.attempts[0].cached
    assert len(upstream) == len(variants)
    efforts = [c.effort.value for c in upstream.calls[-2:]]
    assert efforts == ["low", "high"]
    for msg in variants:
        resp = await stub.Complete(msg)
        assert resp.attempts[0].cached, msg
    assert len(upstream) == len(variants)


async def test_tenants_never_share_entries(live, counting_host, upstream):
    _, _, stub = await live(counted_config(), host=counting_host)
    a1 = await stub.Complete(user("shared secret prompt", tenant="acme"))
    b1 = await stub.Complete(user("shared secret prompt", tenant="globex"))
    assert not a1.attempts[0].cached and not b1.attempts[0].cached
    assert len(upstream) == 2
    a2 = await stub.Complete(user("shared secret prompt", tenant="acme"))
    b2 = await stub.Complete(user("shared secret prompt", tenant="globex"))
    assert a2.attempts[0].cached and b2.attempts[0].cached
    assert len(upstream) == 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Complete(user("shared secret prompt", tenant="initech", cache_mode=pb.CACHE_MODE_ONLY_IF_CACHED))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND, "a third tenant cannot see that others cached it"
    assert len(upstream) == 2


async def test_fifty_concurrent_identical_requests_make_one_upstream_call(live, counting_host, upstream):
    _, _, stub = await live(counted_config(delay_s=0.3), host=counting_host)
    responses = await asyncio.gather(*(stub.Complete(user("the same question")) for _ in range(50)))
    assert len(upstream) == 1
    assert len({r.output.content for r in responses}) == 1
    paid = [r for r in responses if not r.attempts[0].cached]
    assert len(paid) == 1, "exactly one caller pays; the other 49 share its answer"
    assert sum(r.total_cost_usd for r in responses) == paid[0].total_cost_usd
    assert all(r.saved_usd > 0 for r in responses if r.attempts[0].cached)


@pytest.mark.parametrize("impatient_first", [False, True], ids=["follower-leaves", "leader-leaves"])
async def test_a_waiter_whose_deadline_expires_leaves_the_others_their_answer(
    live, counting_host, upstream, impatient_first
):
    daemon, _, stub = await live(counted_config(delay_s=1.0), host=counting_host)
    assert daemon.cache.store.available  # the shards are open: the first call's 0.4 s is not spent waiting for them
    timeouts = (0.4, 5.0) if impatient_first else (5.0, 0.4)
    first = asyncio.ensure_future(stub.Complete(user("slow one"), timeout=timeouts[0]))
    await asyncio.wait_for(upstream.called.wait(), 5)  # the first call is in flight: it leads, the second follows
    second = asyncio.ensure_future(stub.Complete(user("slow one"), timeout=timeouts[1]))
    impatient, patient = (first, second) if impatient_first else (second, first)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await impatient
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    resp = await patient
    assert "simulated" in resp.output.content
    assert resp.attempts[0].cached == impatient_first, "a follower is answered by the leader's call"
    assert len(upstream) == 1


async def test_entry_expires_after_its_policy_ttl(live, counting_host, upstream):
    _, _, stub = await live(counted_config(), host=counting_host)
    await stub.Complete(user("short-lived", policy="short"))
    again = await stub.Complete(user("short-lived", policy="short"))
    assert again.attempts[0].cached
    await asyncio.sleep(1.1)
    late = await stub.Complete(user("short-lived", policy="short"))
    assert not late.attempts[0].cached
    assert len(upstream) == 2


async def test_cache_modes_bypass_refresh_and_only_if_cached(live, counting_host, upstream):
    daemon, _, stub = await live(counted_config(), host=counting_host)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Complete(user("never asked", cache_mode=pb.CACHE_MODE_ONLY_IF_CACHED))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(upstream) == 0, "only-if-cached never calls the upstream"
    await stub.Complete(user("asked", cache_mode=pb.CACHE_MODE_BYPASS))
    assert len(upstream) == 1
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Complete(user("asked", cache_mode=pb.CACHE_MODE_ONLY_IF_CACHED))
    await stub.Complete(user("asked"))
    refreshed = await stub.Complete(user("asked", cache_mode=pb.CACHE_MODE_REFRESH))
    assert not refreshed.attempts[0].cached and len(upstream) == 3
    only = await stub.Complete(user("asked", cache_mode=pb.CACHE_MODE_ONLY_IF_CACHED))
    assert only.attempts[0].cached and len(upstream) == 3
    off = [await stub.Complete(user("asked", policy="uncached")) for _ in range(2)]
    assert not any(r.attempts[0].cached for r in off) and len(upstream) == 5
    counters = daemon.cache.counters()
    assert counters.only_if_cached_misses == 2 and counters.hits == 1 and counters.bypassed == 3


async def test_streaming_request_answered_from_cache_streams_the_stored_text(live, counting_host, upstream):
    _, _, stub = await live(counted_config(), host=counting_host)
    first = await stub.Complete(user("stream me"))
    events = [e async for e in stub.StreamComplete(user("stream me"))]
    deltas = "".join(e.delta for e in events if e.WhichOneof("event") == "delta")
    final = next(e.final for e in events if e.WhichOneof("event") == "final")
    assert deltas == final.output.content == first.output.content
    assert final.attempts[0].cached and final.total_cost_usd == 0
    assert len(upstream) == 1


async def test_failed_upstream_answers_are_not_stored(live):
    config = """
    providers:
      simulated: {kind: simulated, latency_scale: 0.0}
    models:
      gpt-oss-120b: {options: {simulated: {error_rate: 1.0}}}
    policies:
      default:
        rules:
          - name: one
            plan: {strategy: single, params: {model: gpt-oss-120b}}
    """
    daemon, _, stub = await live(config)
    for _ in range(2):
        resp = await stub.Complete(user("fails"))
        assert resp.status == pb.OUTCOME_STATUS_UPSTREAM_FAILED
        assert not resp.attempts[0].cached and resp.attempts[0].error
    daemon.cache.writer.flush()
    assert daemon.cache.usage().entries == 0


async def test_answer_survives_a_daemon_restart(live, counting_host, upstream, tmp_path: Path):
    daemon, running, stub = await live(counted_config(), host=counting_host, data_dir=tmp_path)
    first = await stub.Complete(user("remember me", tenant="acme"))
    await running.server.stop(0)
    await daemon.aclose()
    _, _, stub2 = await live(counted_config(), host=counting_host, data_dir=tmp_path)
    again = await stub2.Complete(user("remember me", tenant="acme"))
    assert again.attempts[0].cached and again.total_cost_usd == 0
    assert math.isclose(again.saved_usd, first.total_cost_usd, rel_tol=1e-9)
    assert len(upstream) == 1
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700


async def test_corrupted_entry_is_a_miss_and_is_replaced(live, counting_host, upstream):
    daemon, _, stub = await live(counted_config(), host=counting_host)
    first = await stub.Complete(user("to be corrupted"))
    daemon.cache.writer.flush()
    key = call_key(upstream.calls[0])
    fanout = daemon.cache.store._cache
    assert fanout is not None and fanout.get(key) is not None
    fanout.set(key, b'{"format": 1, "key": "trunc', tag="default")
    again = await stub.Complete(user("to be corrupted"))
    assert not again.attempts[0].cached and again.output.content == first.output.content
    assert len(upstream) == 2
    assert daemon.cache.counters().corrupt_evicted == 1
    daemon.cache.writer.flush()
    third = await stub.Complete(user("to be corrupted"))
    assert third.attempts[0].cached


class _Planted:
    """Unpickling this creates ``path``: proof that a pickle ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


async def test_pickle_planted_in_the_cache_directory_is_never_executed(live, counting_host, upstream, tmp_path: Path):
    import diskcache

    daemon, _, stub = await live(counted_config(), host=counting_host, data_dir=tmp_path / "data")
    await stub.Complete(user("target"))
    daemon.cache.writer.flush()
    key = call_key(upstream.calls[0])
    marker = tmp_path / "pwned"
    attacker = diskcache.FanoutCache(str(tmp_path / "data" / "cache"), shards=daemon.cache.store.shards)
    attacker.set(key, _Planted(str(marker)), tag="default")  # diskcache's default Disk pickles it
    attacker.close()
    again = await stub.Complete(user("target"))
    assert not marker.exists(), "the planted pickle was executed"
    assert not again.attempts[0].cached and "simulated" in again.output.content
    assert daemon.cache.counters().corrupt_evicted == 1
    assert len(upstream) == 2
