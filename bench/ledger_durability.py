#!/usr/bin/env python3
"""What the ledger costs a request: no ledger vs ``durability: batch`` vs ``durability: sync``.

Runs a real grpc.aio daemon on 127.0.0.1:0 per mode (simulated provider, zero latency, so
the figures are policyd's own overhead), sends N requests with C in flight, and prints
throughput and client-side latency. Usage: ``python bench/ledger_durability.py [N] [C]``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
os.environ.setdefault("POLICYD_DISABLE_PLUGIN_AUTOLOAD", "1")

import grpc.aio  # noqa: E402

from policyd.daemon import DaemonOptions, build_daemon  # noqa: E402
from policyd.server.app import start_server  # noqa: E402
from policyd.v1 import policyd_pb2 as pb  # noqa: E402
from policyd.v1 import policyd_pb2_grpc  # noqa: E402

CONFIG = """
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
ledger: {durability: DURABILITY}
policies:
  default:
    rules:
      - {name: plain, plan: {strategy: single, params: {model: gpt-oss-120b}}}
"""


async def run(mode: str, n: int, concurrency: int, *, quiet: bool = False) -> None:
    folder = Path(tempfile.mkdtemp(prefix="policyd-bench-"))
    config = folder / "policy.yaml"
    config.write_text(textwrap.dedent(CONFIG.replace("DURABILITY", "batch" if mode == "none" else mode)))
    daemon = build_daemon(DaemonOptions(config_path=str(config), data_dir=folder / "data", entry_points=False))
    if mode == "none":
        daemon.engine.pipeline = daemon.engine.pipeline.without("ledger")
    running = await start_server(daemon, "127.0.0.1:0")
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = policyd_pb2_grpc.PolicyServiceStub(channel)
        queue = list(range(n))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                msg = pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=f"question {i}")])
                started = time.perf_counter()
                await stub.Complete(msg)
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    await running.server.stop(0)
    writer = daemon.ledger.writer if daemon.ledger else None
    await daemon.aclose()
    if quiet:
        return
    q = statistics.quantiles(latencies, n=100)
    batches = f"{writer.committed_batches} commits" if writer and mode != "none" else "-"
    print(
        f"{mode:<6} {n / elapsed:8.0f} req/s   p50 {q[49]:6.2f} ms   p95 {q[94]:6.2f} ms   "
        f"p99 {q[98]:6.2f} ms   {batches}"
    )


async def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    print(f"{n} requests, {concurrency} in flight, {os.cpu_count()} cores (after a warm-up run)")
    await run("batch", n // 2, concurrency, quiet=True)
    for mode in sys.argv[3].split(",") if len(sys.argv) > 3 else ("none", "batch", "sync"):
        await run(mode, n, concurrency)


if __name__ == "__main__":
    asyncio.run(main())
