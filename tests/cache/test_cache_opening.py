"""The shards open in the background: the daemon serves first, and a call that needs them waits off the loop.

A real daemon on 127.0.0.1:0 whose shards cannot finish opening until the test lets them: its
health answers and its first Complete waits. Were the wait on the event loop, the health check
could not be answered and the test would never release the shards (it would time out).
"""

from __future__ import annotations

import asyncio
import threading

import diskcache
import grpc
from cache_helpers import counted_config, user
from grpc_health.v1 import health_pb2, health_pb2_grpc

import policyd.cache.store as store_module


async def test_a_call_made_while_the_shards_open_waits_for_them_off_the_event_loop(
    live, counting_host, upstream, monkeypatch
):
    release = threading.Event()

    class HeldFanout(diskcache.FanoutCache):  # type: ignore[misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            release.wait(30)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(store_module.diskcache, "FanoutCache", HeldFanout)
    daemon, running, stub = await live(counted_config(), host=counting_host)
    assert daemon.cache is not None and not daemon.cache.store.ready
    first = asyncio.ensure_future(stub.Complete(user("asked while the shards open")))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert not first.done() and len(upstream) == 0, "the call waits for the shards"
    release.set()
    answer = await asyncio.wait_for(first, 30)
    assert answer.output.content and not answer.attempts[0].cached
    again = await stub.Complete(user("asked while the shards open"))
    assert again.attempts[0].cached and len(upstream) == 1, "then the cache works as ever"
