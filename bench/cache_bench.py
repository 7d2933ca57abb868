"""Measures the response cache: store get/set, keys, entries, the layer's per-hit overhead
and a whole repeated request answered from the cache. Prints figures; asserts nothing.

    PYTHONPATH=.:plugins python bench/cache_bench.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from policyd.cache.codec import Entry, decode, encode
from policyd.cache.keys import call_key
from policyd.cache.service import ResponseCache
from policyd.cache.settings import CacheSettings
from policyd.config import load_text
from policyd.engine import Call, Engine, Pipeline
from policyd.plugin.manager import default_host
from policyd.types import Message, ModelCall, ModelResponse, ModelSpec, Request, Role, Tool, Usage

MODEL = ModelSpec("m", "prov", "up/m", 1.0, 2.0, 100_000, "mit")
TOOL = Tool(
    "search",
    "Search the catalogue for products matching a query.",
    {"type": "object", "properties": {"q": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["q"]},
)
CALL = ModelCall(
    model=MODEL,
    messages=(
        Message(Role.SYSTEM, "You are a helpful shopping assistant. " * 10),
        Message(Role.USER, "Find me a pair of waterproof hiking boots under 150 euros, size 43."),
    ),
    tools=(TOOL,),
    tenant="acme",
)
RESPONSE = ModelResponse(
    message=Message(Role.ASSISTANT, "Here are three options: " + "boot " * 150), usage=Usage(180, 160)
)


def per_op(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """Median and p99 of one call, in microseconds."""
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def per_op_async(fn: Callable[[], object], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()  # type: ignore[misc]
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def show(name: str, figures: tuple[float, float]) -> None:
    print(f"{name:<52} median {figures[0]:9.1f} µs   p99 {figures[1]:9.1f} µs")


async def main(n: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="policyd-cache-bench-"))
    cache = ResponseCache(directory / "cache", CacheSettings())
    store = cache.store
    key = call_key(CALL)
    entry = Entry(key=key, tenant="acme", model="m", stored_at=0, expires_at=1e12, response=RESPONSE)
    value = encode(entry)
    print(f"entry: {len(value)} bytes JSON; {n} operations each; directory {directory}\n")

    show("key (canonical JSON + sha256)", per_op(lambda: call_key(CALL), n))
    show("encode entry", per_op(lambda: encode(entry), n))
    show("decode entry", per_op(lambda: decode(value, key=key, tenant="acme"), n))
    counter = iter(range(10**9))
    show(
        "store.set (diskcache, 8 shards)",
        per_op(lambda: store.set(f"k{next(counter)}", value, expire_s=3600, tenant="acme"), n),
    )
    store.set(key, value, expire_s=3600, tenant="acme")
    show("store.get hit", per_op(lambda: store.get(key), n))
    show("store.get miss", per_op(lambda: store.get("absent"), n))

    async def upstream(turn: object, call: ModelCall, on_delta: object) -> ModelResponse:
        return RESPONSE

    turn = None  # the cache layer only passes the Turn on to the layers inside it
    direct = await per_op_async(lambda: upstream(turn, CALL, None), n)
    hit = await per_op_async(lambda: cache.layer(turn, CALL, None, upstream), n)  # type: ignore[arg-type]
    show("no cache: a free upstream call", direct)
    show("layer hit (key + get + decode + reuse)", hit)
    print(f"{'=> per-hit overhead of the layer':<52} median {hit[0] - direct[0]:9.1f} µs")
    misses = iter(range(10**9))

    def miss() -> object:
        return cache.layer(turn, dataclasses.replace(CALL, sample_index=next(misses)), None, upstream)  # type: ignore[arg-type]

    show("layer miss on the hot path (write is queued)", await per_op_async(miss, n))
    t = time.perf_counter()
    cache.writer.flush()
    print(f"{'writer: flush of the queued misses':<52} {(time.perf_counter() - t) * 1000:9.1f} ms")

    registered = default_host(entry_points=False).collect()
    config = load_text(
        "providers: {simulated: {kind: simulated, latency_scale: 0.0}}\n"
        "policies: {default: {rules: [{name: r, plan: {strategy: fallback, params: {models: [gpt-oss-120b]}}}]}}\n",
        registered,
    )
    request = Request(request_id="r", messages=CALL.messages, tools=CALL.tools, tenant="acme")
    uncached = Engine(config, registered)
    cached = Engine(config, registered, pipeline=Pipeline(calls=(Call("cache", cache.layer),)))
    await cached.complete(request)
    cache.writer.flush()
    show("whole request, no cache (simulated, 0 latency)", await per_op_async(lambda: uncached.complete(request), n))
    show("whole request replayed from the cache", await per_op_async(lambda: cached.complete(request), n))
    usage = cache.usage()
    print(f"\n{usage.entries} entries, {usage.bytes / 2**20:.2f} MiB; counters {cache.counters()}")
    cache.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    asyncio.run(main(parser.parse_args().n))
