"""Embed: the latency the daemon adds over calling the upstream directly, and the per-text cache's effect.

A local fake of OpenAI's ``POST /v1/embeddings`` (fixed service time, real HTTP on
127.0.0.1) is called directly with aiohttp, then through a live policyd (grpc.aio on
127.0.0.1, real stub, cache bypassed) with the same batch. Then a batch is embedded cold,
again with 90% of its texts repeated, and again fully repeated. Prints figures; asserts
nothing.

    PYTHONPATH=.:plugins python bench/embed_bench.py [--texts 256] [--rounds 30] [--service-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

import aiohttp
import grpc.aio
from aiohttp import web

from policyd.daemon import DaemonOptions, build_daemon
from policyd.server.app import start_server
from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc

DIMS = 256


def fake_app(service_s: float) -> web.Application:
    async def embeddings(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(service_s)
        texts = body["input"]
        data = [{"index": i, "embedding": [((i + k) % 7) / 7.0 for k in range(DIMS)]} for i in range(len(texts))]
        tokens = sum(len(t) // 4 + 1 for t in texts)
        return web.json_response({"data": data, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    app = web.Application()
    app.router.add_post("/v1/embeddings", embeddings)
    return app


def policy(port: int) -> str:
    return textwrap.dedent(
        f"""
        providers:
          bench: {{kind: openai-compatible, base_url: "http://127.0.0.1:{port}/v1"}}
        models:
          text-embedding-3-small: {{provider: bench, options: {{dimensions: {DIMS}, min_dimensions: 1}}}}
        policies:
          default:
            rules:
              - name: embeddings
                plan: {{strategy: embed, params: {{model: text-embedding-3-small}}}}
        """
    )


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


async def direct(url: str, texts: list[str], rounds: int) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as session:
        for _ in range(rounds):
            t = time.perf_counter()
            async with session.post(url, json={"model": "text-embedding-3-small", "input": texts}) as resp:
                await resp.json()
            out.append((time.perf_counter() - t) * 1000)
    return out


async def through(stub: policyd_pb2_grpc.PolicyServiceStub, texts: list[str], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        await stub.Embed(pb.EmbedRequest(texts=texts, cache_mode=pb.CACHE_MODE_BYPASS))
        out.append((time.perf_counter() - t) * 1000)
    return out


async def timed(stub: policyd_pb2_grpc.PolicyServiceStub, texts: list[str]) -> tuple[float, pb.EmbedResponse]:
    t = time.perf_counter()
    resp = await stub.Embed(pb.EmbedRequest(texts=texts))
    return (time.perf_counter() - t) * 1000, resp


async def run(n_texts: int, rounds: int, service_ms: float) -> None:
    runner = web.AppRunner(fake_app(service_ms / 1000), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    folder = Path(tempfile.mkdtemp(prefix="policyd-embed-bench-"))
    (folder / "policy.yaml").write_text(policy(port), encoding="utf-8")
    daemon = build_daemon(
        DaemonOptions(config_path=str(folder / "policy.yaml"), data_dir=folder / "data", entry_points=False)
    )
    server = await start_server(daemon, "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    stub = policyd_pb2_grpc.PolicyServiceStub(channel)
    try:
        texts = [f"benchmark passage number {i} about routing embeddings by policy" for i in range(n_texts)]
        await direct(f"http://127.0.0.1:{port}/v1/embeddings", texts, 3)  # warm both paths
        await through(stub, texts, 3)
        d = await direct(f"http://127.0.0.1:{port}/v1/embeddings", texts, rounds)
        g = await through(stub, texts, rounds)
        print(f"batch of {n_texts} texts, {DIMS} dimensions, upstream service time {service_ms:g} ms, {rounds} rounds")
        print(f"  direct HTTP p50      {p50(d):8.2f} ms")
        print(f"  through policyd p50  {p50(g):8.2f} ms   added {p50(g) - p50(d):+.2f} ms ({p50(g) / p50(d):.2f}x)")
        fresh = [f"{t} (cache run)" for t in texts]
        cold_ms, cold = await timed(stub, fresh)
        await daemon.engine.embedder.cache.flush()  # type: ignore[union-attr]
        keep = n_texts * 9 // 10
        mixed_ms, mixed = await timed(stub, fresh[:keep] + [f"{t} (new)" for t in texts[keep:]])
        await daemon.engine.embedder.cache.flush()  # type: ignore[union-attr]
        warm_ms, warm = await timed(stub, fresh)
        print("per-text cache on the same batch:")
        for name, ms, resp in (
            ("cold", cold_ms, cold),
            ("90% repeated", mixed_ms, mixed),
            ("all repeated", warm_ms, warm),
        ):
            hits = sum(e.cached for e in resp.embeddings)
            print(
                f"  {name:<13} {ms:8.2f} ms  {hits:4d}/{n_texts} cached  ${resp.total_cost_usd:.8f}"
                f"  ({resp.total_cost_usd / cold.total_cost_usd:.2f}x cold cost, {ms / cold_ms:.2f}x cold time)"
            )
    finally:
        await channel.close()
        await server.server.stop(0)
        await daemon.aclose()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--service-ms", type=float, default=20.0)
    args = parser.parse_args()
    os.environ.setdefault("POLICYD_DISABLE_PLUGIN_AUTOLOAD", "1")
    asyncio.run(run(args.texts, args.rounds, args.service_ms))


if __name__ == "__main__":
    main()
