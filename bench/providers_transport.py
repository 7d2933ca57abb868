"""aiohttp vs httpx against a local fake Chat Completions upstream: requests per second and latency.

    python bench/providers_transport.py [--requests 3000] [--concurrency 64] [--stream]

The fake upstream runs in its own process (one core), the client in this one (the
other core of a 2-vCPU machine). Each client sends ``--requests`` POSTs with
``--concurrency`` in flight over one pooled client, after a warm-up. ``policyd
provider`` is the real openai-compatible provider (aiohttp, request building,
parsing) to show what the plumbing costs on top of the bare transport. httpx is
optional (``pip install httpx``); without it that row is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

SERVER = r"""
import json, sys
from aiohttp import web
ANSWER = {"id": "c", "object": "chat.completion", "model": "bench",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "x" * 400}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 50, "completion_tokens": 100}}
BODY = json.dumps(ANSWER).encode()
CHUNKS = [("data: " + json.dumps({"object": "chat.completion.chunk",
           "choices": [{"index": 0, "delta": {"content": "x" * 20}, "finish_reason": None}]}) + "\n\n").encode()] * 20
TAIL = ("data: " + json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 100}}) + "\n\ndata: [DONE]\n\n").encode()
async def handle(request):
    body = await request.json()
    if not body.get("stream"):
        return web.Response(body=BODY, content_type="application/json")
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for c in CHUNKS:
        await resp.write(c)
    await resp.write(TAIL)
    await resp.write_eof()
    return resp
async def main():
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
import asyncio
asyncio.run(main())
"""

REQUEST = {"model": "bench", "messages": [{"role": "user", "content": "hello " * 50}]}


async def run(name: str, one: Callable[[], Awaitable[None]], requests: int, concurrency: int) -> dict[str, float]:
    for _ in range(min(200, requests)):  # warm-up: fill the pool
        await one()
    latencies: list[float] = []
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t = time.perf_counter()
            await one()
            latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def bench_aiohttp(url: str, stream: bool, requests: int, concurrency: int) -> dict[str, float]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        payload = json.dumps({**REQUEST, "stream": stream}).encode()

        async def one() -> None:
            async with session.post(url, data=payload, headers={"Content-Type": "application/json"}) as resp:
                if stream:
                    async for _ in resp.content.iter_any():
                        pass
                else:
                    json.loads(await resp.read())

        return await run("aiohttp", one, requests, concurrency)


async def bench_httpx(url: str, stream: bool, requests: int, concurrency: int) -> dict[str, float] | None:
    try:
        import httpx
    except ImportError:
        return None
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        payload = json.dumps({**REQUEST, "stream": stream}).encode()
        headers = {"Content-Type": "application/json"}

        async def one() -> None:
            if stream:
                async with client.stream("POST", url, content=payload, headers=headers) as resp:
                    async for _ in resp.aiter_raw():
                        pass
            else:
                resp = await client.post(url, content=payload, headers=headers)
                json.loads(resp.content)

        return await run("httpx", one, requests, concurrency)


async def bench_provider(base: str, stream: bool, requests: int, concurrency: int) -> dict[str, float]:
    from policyd_plugins.openai.provider import OpenAIProvider, OpenAISettings

    from policyd.types import Message, ModelCall, ModelSpec, Role

    provider = OpenAIProvider("bench", OpenAISettings(base_url=f"{base}/v1", pool_size=concurrency))
    model = ModelSpec("bench", "bench", "bench", 0.0, 0.0, 32_768, "mit")
    call = ModelCall(model=model, messages=(Message(Role.USER, "hello " * 50),), timeout_s=30)
    sink = (lambda _: None) if stream else None

    async def one() -> None:
        await provider.complete(call, sink)

    try:
        return await run("provider", one, requests, concurrency)
    finally:
        await provider.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--stream", action="store_true", help="SSE answers of 20 chunks instead of one JSON body")
    ap.add_argument("--rounds", type=int, default=3, help="clients alternate this many times; medians are printed")
    args = ap.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True, env=os.environ)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        asyncio.run(compare(args, f"http://127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.wait(timeout=10)


async def compare(args: argparse.Namespace, base: str) -> None:
    url = f"{base}/v1/chat/completions"
    mode = "stream (SSE, 20 chunks)" if args.stream else "JSON"
    print(
        f"{args.requests} requests x {args.rounds} rounds, {args.concurrency} in flight, {mode} answers, "
        "server in its own process; medians over the rounds"
    )
    clients: list[tuple[str, Callable[[], Awaitable[dict[str, float] | None]]]] = [
        ("aiohttp", lambda: bench_aiohttp(url, args.stream, args.requests, args.concurrency)),
        ("httpx", lambda: bench_httpx(url, args.stream, args.requests, args.concurrency)),
        ("policyd provider (aiohttp)", lambda: bench_provider(base, args.stream, args.requests, args.concurrency)),
    ]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in clients}
    for i in range(args.rounds):
        for name, fn in clients[i % len(clients) :] + clients[: i % len(clients)]:  # rotate the order
            r = await fn()
            if r is not None:
                results[name].append(r)
    print(f"{'client':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, rs in results.items():
        if not rs:
            print(f"{name:<28}{'skipped (pip install httpx)':>30}")
            continue
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(f"{name:<28}{med['rps']:>10.0f}{med['p50_ms']:>10.1f}{med['p99_ms']:>10.1f}")


if __name__ == "__main__":
    main()
