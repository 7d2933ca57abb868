"""Measures what containing plugins costs per request: the own-time clock around strategies
and validators, and the worker-thread hop of a transform. Prints figures; asserts nothing.

    PYTHONPATH=.:plugins python bench/plugin_containment.py [--n 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from policyd.config.schema import PluginsConfig
from policyd.engine.containment import Containment
from policyd.plugin.specs import Registered
from policyd.testing import make_engine, make_host

POLICY = """
providers: {simulated: {kind: simulated, latency_scale: 0}}
plugins: {timeouts: {strategy_ms: %(limit)s, validator_ms: %(limit)s, transform_ms: %(limit)s}}
policies:
  default:
    rules:
      - name: r
        plan:
          strategy: fail-fast
          transforms: %(transforms)s
          params:
            gate: {name: regex, params: {pattern: "."}}
            rungs: [{model: glm-4.5}]
"""


async def per_call_us(fn: Callable[[], Awaitable[object]], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


async def main(n: int) -> None:
    contain = Containment(Registered(), PluginsConfig())

    async def nothing() -> None:
        return None

    async def contained() -> None:
        await contain.run("strategies", "x", nothing, time.monotonic() + 10)

    bare = await per_call_us(nothing, n)
    wrapped = await per_call_us(contained, n)
    print(f"await a no-op coroutine:              median {bare[0]:7.1f} us  p99 {bare[1]:7.1f} us")
    print(f"  the same under Containment.run:     median {wrapped[0]:7.1f} us  p99 {wrapped[1]:7.1f} us")

    host = make_host()
    for label, limit, transforms in [
        ("fail-fast + regex gate, no limits    ", "null", "[]"),
        ("fail-fast + regex gate, default limits", "5000", "[]"),
        ("  + compact-tools transform (thread)  ", "1000", "[{name: compact-tools}]"),
        ("  + compact-tools transform (inline)  ", "null", "[{name: compact-tools}]"),
    ]:
        h = make_engine(host, POLICY % {"limit": limit, "transforms": transforms})
        figures = await per_call_us(lambda h=h: h.complete("hello", deadline_s=None), n)
        print(f"whole request, {label}: median {figures[0]:7.1f} us  p99 {figures[1]:7.1f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    asyncio.run(main(parser.parse_args().n))
