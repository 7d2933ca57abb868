"""Embed: the latency the daemon adds over calling the upstream directly, and the per-text cache's effect.

Three processes: a local fake of OpenAI's ``POST /v1/embeddings`` (fixed service time,
aiohttp on 127.0.0.1), ``policyd serve`` on a policy that embeds with it, and this one,
the caller. The same batch is sent directly (HTTP + JSON, what a service calling the
upstream itself does) and through policyd (gRPC, cache bypassed). Then a batch is embedded
cold, again with 90% of its texts repeated, and again fully repeated. Prints figures;
asserts nothing.

    PYTHONPATH=.:plugins python bench/embed_bench.py [--texts 256] [--rounds 30] [--service-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import socket
import statistics
import textwrap
import time

import orjson
from aiohttp import web

from policyd.testing.process import DaemonProcess
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


def serve_fake(sock: socket.socket, service_s: float) -> None:
    web.run_app(fake_app(service_s), sock=sock, print=None, access_log=None)


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


def direct(port: int, texts: list[str], rounds: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"model": "text-embedding-3-small", "input": texts})
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        conn.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"})
        data = orjson.loads(conn.getresponse().read())  # the fastest parse a direct caller could use
        assert len(data["data"]) == len(texts)
        out.append((time.perf_counter() - t) * 1000)
    conn.close()
    return out


def through(stub: policyd_pb2_grpc.PolicyServiceStub, texts: list[str], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        resp = stub.Embed(pb.EmbedRequest(texts=texts, cache_mode=pb.CACHE_MODE_BYPASS), timeout=60)
        assert len(resp.embeddings) == len(texts)
        out.append((time.perf_counter() - t) * 1000)
    return out


def timed(stub: policyd_pb2_grpc.PolicyServiceStub, texts: list[str]) -> tuple[float, pb.EmbedResponse]:
    t = time.perf_counter()
    resp = stub.Embed(pb.EmbedRequest(texts=texts), timeout=60)
    return (time.perf_counter() - t) * 1000, resp


def run(n_texts: int, rounds: int, service_ms: float) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    fake = multiprocessing.Process(target=serve_fake, args=(sock, service_ms / 1000), daemon=True)
    fake.start()
    daemon = DaemonProcess(policy(port))
    try:
        stub = daemon.stub()
        texts = [f"benchmark passage number {i} about routing embeddings by policy" for i in range(n_texts)]
        direct(port, texts, 3)  # warm both paths
        through(stub, texts, 3)
        d = direct(port, texts, rounds)
        g = through(stub, texts, rounds)
        print(f"batch of {n_texts} texts, {DIMS} dimensions, upstream service time {service_ms:g} ms, {rounds} rounds")
        print(f"  direct HTTP + orjson p50 {p50(d):7.2f} ms")
        print(f"  through policyd p50      {p50(g):7.2f} ms   added {p50(g) - p50(d):+.2f} ms ({p50(g) / p50(d):.2f}x)")
        fresh = [f"{t} (cache run)" for t in texts]
        cold_ms, cold = timed(stub, fresh)
        keep = n_texts * 9 // 10
        mixed_ms, mixed = timed(stub, fresh[:keep] + [f"{t} (new)" for t in texts[keep:]])
        warm_ms, warm = timed(stub, fresh)
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
        daemon.stop()
        fake.terminate()
        fake.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--service-ms", type=float, default=20.0)
    args = parser.parse_args()
    run(args.texts, args.rounds, args.service_ms)


if __name__ == "__main__":
    main()
