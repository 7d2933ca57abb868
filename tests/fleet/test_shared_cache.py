"""The shared cache tier on a real Valkey/Redis: a hit across replicas, one upstream call for the fleet."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from policyd.fleet.cache import SharedCacheLayer
from policyd.v1 import policyd_pb2 as pb
from tests.fleet.servers import RedisServer

CACHED = """
version: fleet-cache
providers:
  simulated: {{kind: simulated, latency_scale: 0.3}}
policies:
  default:
    rules:
      - name: plain
        plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}
fleet:
  valkey: {{prefix: {prefix}, timeout_ms: 2000}}
"""


@pytest.fixture
def valkey_env(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> RedisServer:
    monkeypatch.setenv("POLICYD_VALKEY_URL", redis_server.url)
    return redis_server


def user(text: str, tenant: str = "acme") -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], tenant=tenant)


async def three(live) -> list:
    text = CACHED.format(prefix=f"c{uuid.uuid4().hex[:8]}")
    return [await live(text) for _ in range(3)]


def layer(daemon) -> SharedCacheLayer:
    found = daemon.engine.pipeline.step("shared-cache")
    assert isinstance(found, SharedCacheLayer)
    return found


async def test_an_answer_of_a_is_a_cache_hit_on_b_and_c_for_the_same_tenant_only(live, valkey_env):
    (_, _, stub_a), (b, _, stub_b), (c, _, stub_c) = await three(live)
    first = await stub_a.Complete(user("what is a fleet?"))
    assert not first.attempts[0].cached
    for stub in (stub_b, stub_c):
        again = await stub.Complete(user("what is a fleet?"))
        assert again.attempts[0].cached and again.output.content == first.output.content
        assert again.total_cost_usd == 0
    other = await stub_b.Complete(user("what is a fleet?", tenant="globex"))
    assert not other.attempts[0].cached, "tenants never share an entry"
    assert layer(b).hits == 1 and layer(c).hits == 1


async def test_50_identical_concurrent_requests_over_three_replicas_make_one_upstream_call(live, valkey_env):
    replicas = await three(live)
    replies = await asyncio.gather(*(replicas[i % 3][2].Complete(user("the same question")) for i in range(50)))
    upstream = [r for r in replies if not r.attempts[0].cached]
    assert len(upstream) == 1, "one replica called upstream; every other answer came from the cache"
    assert {r.output.content for r in replies} == {upstream[0].output.content}
    assert sum(layer(d).upstream_calls for d, _, _ in replicas) == 1


async def test_valkey_down_the_call_goes_upstream(live, tmp_path, monkeypatch):
    server = RedisServer(tmp_path)
    server.start()
    monkeypatch.setenv("POLICYD_VALKEY_URL", server.url)
    _, _, stub = await live(CACHED.format(prefix="down"))
    server.stop()
    reply = await stub.Complete(user("asked while Valkey is down"), timeout=5)
    assert reply.output.content and not reply.attempts[0].cached


async def test_the_shared_cache_sits_just_inside_the_disk_cache(live, valkey_env):
    (daemon, _, _), *_ = await three(live)
    order = daemon.engine.pipeline.order()
    assert order[order.index("call:cache") + 1] == "call:shared-cache"
