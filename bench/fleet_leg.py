#!/usr/bin/env python3
"""The fleet leg: what shared budgets, rate limits, cache and ledger cost a request, and throughput.

Starts a private redis-server and PostgreSQL (``tests/fleet/servers.py``), then two runs of
three ``policyd serve`` processes with the same policy (budgets, rate limits, cache on,
``durability: sync``, simulated provider at zero latency so the figures are policyd's own):

* ``embedded``: each replica on its own state (the default: memory, SQLite, disk cache);
* ``+valkey`` and ``+postgres``: one shared store only (where the added time goes);
* ``fleet``: the same file plus ``fleet:`` (Valkey budgets, rate limits and cache tier;
  PostgreSQL ledger shipped before each reply).

Every request is distinct (a cache miss: every store is on the path). Prints throughput and
client-side latency per run and the added latency per request (p50, p95) of the fleet.
``nice .venv/bin/python bench/fleet_leg.py [REQUESTS] [CONCURRENCY]``
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import grpc.aio  # noqa: E402

from policyd.testing.process import DaemonProcess  # noqa: E402
from policyd.v1 import policyd_pb2 as pb  # noqa: E402
from policyd.v1 import policyd_pb2_grpc  # noqa: E402
from tests.fleet.servers import PostgresServer, RedisServer  # noqa: E402

POLICY = """
version: bench-fleet
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
policies:
  default:
    rules:
      - {name: plain, plan: {strategy: single, params: {model: gpt-oss-120b}}}
budgets:
  tenants:
    "*": {daily_usd: 1000000}
limits:
  rate:
    requests_per_minute: 100000000
ledger: {durability: sync}
"""
VALKEY = "  valkey: {prefix: bench, timeout_ms: 5000}\n"
POSTGRES = "  postgres: {timeout_ms: 5000}\n"
FLEET = "fleet:\n" + VALKEY + POSTGRES


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(addresses: list[str], n: int, concurrency: int) -> tuple[list[float], float]:
    channels = [grpc.aio.insecure_channel(a) for a in addresses]
    stubs = [policyd_pb2_grpc.PolicyServiceStub(c) for c in channels]
    latencies: list[float] = []
    queue = list(range(n))
    run = uuid.uuid4().hex[:6]

    async def worker() -> None:
        while queue:
            i = queue.pop()
            msg = pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=f"{run} question {i}")])
            msg.tenant = f"tenant-{i % 7}"
            started = time.perf_counter()
            await stubs[i % len(stubs)].Complete(msg, timeout=60)
            latencies.append((time.perf_counter() - started) * 1000)

    for _ in range(2):  # warm the connections and the pools
        await asyncio.gather(
            *(s.Complete(pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="w")])) for s in stubs)
        )
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    for c in channels:
        await c.close()
    return latencies, n / seconds


def leg(name: str, policy: str, env: dict[str, str], n: int, concurrency: int) -> tuple[list[float], float]:
    replicas = [DaemonProcess(policy, env=env) for _ in range(3)]
    try:
        latencies, rps = asyncio.run(drive([r.address for r in replicas], n, concurrency))
    finally:
        for r in replicas:
            r.stop()
    print(f"{name:<9} {rps:>8.1f} req/s   p50 {pct(latencies, 0.5):>7.2f} ms   p95 {pct(latencies, 0.95):>7.2f} ms")
    return latencies, rps


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    tmp = Path(tempfile.mkdtemp(prefix="policyd-bench-fleet-"))
    redis = RedisServer(tmp)
    pg = PostgresServer(Path(tempfile.mkdtemp(prefix="policyd-bench-pg-")))
    redis.start()
    pg.init()
    pg.start()
    pg.create_db()
    env = {"POLICYD_VALKEY_URL": redis.url, "POLICYD_POSTGRES_DSN": pg.dsn}
    try:
        print(f"3 replicas, {n} distinct requests, {concurrency} in flight, {os.cpu_count()} CPUs")
        base, base_rps = leg("embedded", POLICY, env, n, concurrency)
        leg("+valkey", POLICY + "fleet:\n" + VALKEY, env, n, concurrency)  # where the added time goes
        leg("+postgres", POLICY + "fleet:\n" + POSTGRES, env, n, concurrency)
        fleet, fleet_rps = leg("fleet", POLICY + FLEET, env, n, concurrency)
    finally:
        redis.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(pg.directory, ignore_errors=True)
    print(
        f"added latency per request: p50 {pct(fleet, 0.5) - pct(base, 0.5):+.2f} ms,"
        f" p95 {pct(fleet, 0.95) - pct(base, 0.95):+.2f} ms; throughput fleet/embedded {fleet_rps / base_rps:.2f}"
    )


if __name__ == "__main__":
    main()
