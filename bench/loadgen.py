"""Load generator for gRPC (PolicyService.Complete) and direct HTTP (chat completions).

* ``--mode open --rate R``: requests are *scheduled* at a fixed rate whatever the server
  does (open loop), and each latency is measured from its scheduled send time, so a
  stalled server shows up as latency instead of hiding as lower load.
* ``--mode closed --concurrency C``: C workers send back to back; gives the maximum RPS.

Prints one JSON object: count, errors, seconds, rps and latency percentiles in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

Send = Callable[[], Awaitable[bool]]

PROMPT = "What is 6 times 7? Answer with the number only."


def percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return math.nan
    k = max(0, min(len(sorted_ms) - 1, math.ceil(q / 100 * len(sorted_ms)) - 1))
    return sorted_ms[k]


def summary(latencies_ms: list[float], errors: int, seconds: float) -> dict[str, Any]:
    lat = sorted(latencies_ms)
    return {
        "count": len(lat),
        "errors": errors,
        "seconds": round(seconds, 3),
        "rps": round(len(lat) / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": round(percentile(lat, 50), 3),
        "p90_ms": round(percentile(lat, 90), 3),
        "p99_ms": round(percentile(lat, 99), 3),
        "max_ms": round(lat[-1], 3) if lat else math.nan,
    }


async def grpc_sender(
    target: str, labels: dict[str, str], connections: int = 1, unique: bool = False
) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """``connections`` > 1: that many channels, each its own TCP connection, used in turn (the workers of
    ``policyd serve --workers N`` share connections, not requests). ``unique``: every request's prompt
    differs (a counter appended), so none is a cache hit."""
    import itertools

    import grpc.aio

    from policyd.v1 import policyd_pb2 as pb
    from policyd.v1 import policyd_pb2_grpc as pb_grpc

    options = [("grpc.use_local_subchannel_pool", 1)] if connections > 1 else []
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(connections)]
    stubs = itertools.cycle([pb_grpc.PolicyServiceStub(c) for c in channels])
    request = pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=PROMPT)], labels=labels)
    sent, run_id = 0, os.urandom(4).hex()  # distinct across runs against one daemon too

    async def send() -> bool:
        nonlocal sent
        req = request
        if unique:
            sent += 1
            req = pb.CompleteRequest(
                messages=[pb.Message(role=pb.ROLE_USER, content=f"{PROMPT} #{run_id}-{sent}")], labels=labels
            )
        try:
            resp = await next(stubs).Complete(req, timeout=10)
        except grpc.aio.AioRpcError:
            return False
        return resp.status in (pb.OUTCOME_STATUS_ACCEPTED, pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED)

    async def close() -> None:
        for channel in channels:
            await channel.close()

    return send, close


async def http_sender(url: str, concurrency: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max(concurrency, 100)))
    body = json.dumps({"model": "bench-model", "messages": [{"role": "user", "content": PROMPT}]}).encode()
    headers = {"Content-Type": "application/json"}

    async def send() -> bool:
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    return send, session.close


async def open_loop(send: Send, rate: float, duration_s: float) -> dict[str, Any]:
    total = max(1, int(rate * duration_s))
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(scheduled: float) -> None:
        nonlocal errors
        ok = await send()
        if ok:
            latencies.append((loop.time() - scheduled) * 1000)
        else:
            errors += 1

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    return summary(latencies, errors, loop.time() - start)


async def closed_loop(send: Send, concurrency: int, duration_s: float, requests: int | None) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    remaining = requests
    start = time.perf_counter()
    stop_at = start + duration_s

    async def worker() -> None:
        nonlocal errors, remaining
        while True:
            if remaining is not None:
                if remaining <= 0:
                    return
                remaining -= 1
            elif time.perf_counter() >= stop_at:
                return
            t0 = time.perf_counter()
            if await send():
                latencies.append((time.perf_counter() - t0) * 1000)
            else:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summary(latencies, errors, time.perf_counter() - start)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    labels = dict(kv.split("=", 1) for kv in args.label)
    if args.target.startswith("http://"):
        send, close = await http_sender(args.target, args.concurrency)
    else:
        send, close = await grpc_sender(args.target.removeprefix("grpc://"), labels, args.connections, args.unique)
    try:
        for _ in range(args.warmup):
            await send()
        if args.mode == "open":
            return await open_loop(send, args.rate, args.duration)
        return await closed_loop(send, args.concurrency, args.duration, args.requests)
    finally:
        await close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", required=True, help="grpc://HOST:PORT or http://HOST:PORT/v1/chat/completions")
    p.add_argument("--mode", choices=["open", "closed"], default="closed")
    p.add_argument("--rate", type=float, default=100.0, help="open loop: requests per second")
    p.add_argument("--concurrency", type=int, default=32, help="closed loop: workers")
    p.add_argument("--duration", type=float, default=10.0, help="seconds (closed loop without --requests)")
    p.add_argument("--requests", type=int, default=None, help="closed loop: stop after this many requests")
    p.add_argument("--warmup", type=int, default=50, help="requests sent first and not measured")
    p.add_argument("--connections", type=int, default=1, help="gRPC: TCP connections the requests take in turn")
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE request label (gRPC)")
    p.add_argument("--unique", action="store_true", help="gRPC: a different prompt each request (no cache hits)")
    args = p.parse_args(argv)
    json.dump(asyncio.run(run(args)), sys.stdout)
    print()


if __name__ == "__main__":
    main()
