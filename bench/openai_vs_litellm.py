"""policyd's OpenAI front door against LiteLLM's proxy, both passthrough to the same fake upstream.

One run, three legs on the same machine:

* **direct**: the client calls the fake upstream itself (the baseline for added latency);
* **policyd**: ``policyd serve --http-listen`` with its default settings (cache, ledger,
  limits as shipped) and a one-rule policy sending every request to the fake upstream
  through the ``openai-compatible`` provider;
* **litellm**: ``litellm --config`` (``litellm[proxy]``, one worker, its documented defaults,
  no database, cache off) with one model on the same upstream; it refuses to start without
  a master key, so one is set and every leg sends it as its bearer token.

Each gateway runs pinned to core 0 (``taskset``); this driver (the load) and the fake upstream
to core 1. Every request's prompt is unique across the whole run, so no answer is a cache hit.
Per gateway: closed-loop throughput at ``--concurrency`` with the gateway's CPU per request
(user + system from /proc), p50 at concurrency 1, and streaming time to first token at
concurrency 1; "added" figures subtract the direct leg's. LiteLLM is not a project dependency:
install it in its own environment (``python -m venv .venv-litellm && .venv-litellm/bin/pip
install 'litellm[proxy]'``) and pass ``--litellm``.

    nice python bench/openai_vs_litellm.py --litellm .venv-litellm/bin/litellm
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench.http_servers import cpu_s, free_port  # noqa: E402
from bench.run import LOAD_CPU, SERVER_CPU  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}", "POLICYD_DISABLE_PLUGIN_AUTOLOAD": "1"}
PROMPTS = itertools.count()
MASTER_KEY = "sk-bench-" + os.urandom(16).hex()
"""LiteLLM's proxy refuses to start without a master key; every leg sends it (policyd without auth ignores it)."""
HEADERS = {"content-type": "application/json", "authorization": f"Bearer {MASTER_KEY}"}
TARGETS = {"rps": 10.0, "cpu": 0.1, "added_p50_ms": 1.0, "ttft_ms": 1.0}

POLICYD_CONFIG = """
version: bench-openai
providers:
  fake: {{kind: openai-compatible, base_url: "{upstream}/v1"}}
catalogs: []
models:
  bench-model:
    provider: fake
    upstream: bench-model
    input_usd_per_mtok: 0.1
    output_usd_per_mtok: 0.4
    context_window: 32000
    license: apache-2.0
policies:
  default:
    rules:
      - name: passthrough
        plan: {{strategy: single, params: {{model: bench-model}}}}
"""

LITELLM_CONFIG = """
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: {upstream}/v1
      api_key: bench
litellm_settings:
  cache: false
"""


@dataclass
class Leg:
    name: str
    url: str
    model: str
    pid: int | None = None
    figures: dict[str, float] = field(default_factory=dict)


def body(leg: str, stream: bool) -> bytes:
    """A chat request whose prompt no other request of the run repeats."""
    prompt = f"[{leg} #{next(PROMPTS)} {time.time_ns()}] What is 6 times 7? Answer with the number only."
    payload: dict[str, Any] = {"model": "", "messages": [{"role": "user", "content": prompt}]}
    if stream:
        payload |= {"stream": True, "stream_options": {"include_usage": True}}
    return json.dumps(payload).encode()


async def one(session: Any, leg: Leg, stream: bool) -> float | None:
    """Seconds to the whole answer (or, streaming, to the first content chunk); None on failure."""
    data = body(leg.name, stream).replace(b'"model": ""', f'"model": "{leg.model}"'.encode(), 1)
    start = time.perf_counter()
    async with session.post(leg.url, data=data, headers=HEADERS) as resp:
        if resp.status != 200:
            await resp.read()
            return None
        if not stream:
            await resp.read()
            return time.perf_counter() - start
        first = None
        async for line in resp.content:
            if first is None and b'"content":"' in line and b'"content":""' not in line:
                first = time.perf_counter() - start
        return first


async def closed_loop(leg: Leg, concurrency: int, duration: float) -> tuple[int, int, float, float]:
    """(ok, failed, seconds, gateway CPU seconds) of ``concurrency`` workers sending back to back."""
    import aiohttp

    ok = failed = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 4)) as session:
        for _ in range(20):  # warm-up
            await one(session, leg, False)
        cpu0 = cpu_s(leg.pid) if leg.pid else 0.0
        start = time.perf_counter()
        stop = start + duration

        async def worker() -> None:
            nonlocal ok, failed
            while time.perf_counter() < stop:
                if await one(session, leg, False) is None:
                    failed += 1
                else:
                    ok += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        cpu = (cpu_s(leg.pid) - cpu0) if leg.pid else 0.0
    return ok, failed, elapsed, cpu


async def paired(legs: list[Leg], n: int, stream: bool, grpc_address: str = "") -> list[float]:
    """Median milliseconds per leg (and last, gRPC's) of ``n`` rounds, one request per leg in turn.

    Interleaving the legs request by request puts them under the same machine load, so the
    difference of two medians is the added latency, not a change of load between phases.
    """
    import aiohttp

    times: list[list[float]] = [[] for _ in range(len(legs) + bool(grpc_address))]
    async with aiohttp.ClientSession() as session:
        stub, channel = await _grpc_stub(grpc_address)
        try:
            for i in range(n + 10):
                for j, leg in enumerate(legs):
                    t = await one(session, leg, stream)
                    if t is not None and i >= 10:
                        times[j].append(t * 1000)
                if stub is not None:
                    t = await _grpc_once(stub)
                    if i >= 10:
                        times[-1].append(t * 1000)
        finally:
            if channel is not None:
                await channel.close()
    for leg, got in zip(legs, times, strict=False):
        if len(got) < n * 0.9:
            raise RuntimeError(f"{leg.name}: {n - len(got)} of {n} requests failed")
    return [statistics.median(t) for t in times]


async def _grpc_stub(address: str) -> tuple[Any, Any]:
    if not address:
        return None, None
    import grpc.aio

    from policyd.v1 import policyd_pb2_grpc as pb_grpc

    channel = grpc.aio.insecure_channel(address)
    return pb_grpc.PolicyServiceStub(channel), channel


async def _grpc_once(stub: Any) -> float:
    """One gRPC Complete on the same daemon's other door, with a prompt of its own."""
    from policyd.v1 import policyd_pb2 as pb

    prompt = f"[grpc #{next(PROMPTS)} {time.time_ns()}] What is 6 times 7? Answer with the number only."
    start = time.perf_counter()
    await stub.Complete(pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=prompt)]), timeout=10)
    return time.perf_counter() - start


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 180) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise RuntimeError(f"{url}: not up after {timeout_s} s")


@contextmanager
def process(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    log = tempfile.NamedTemporaryFile(prefix="bench-openai-", suffix=".log", delete=False)
    proc = subprocess.Popen(argv, env=env or ENV, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(leg: Leg, direct: Leg, args: argparse.Namespace, grpc_address: str = "") -> None:
    """Closed-loop throughput and CPU, then c=1 latency and TTFT paired with direct calls."""
    ok, failed, seconds, cpu = asyncio.run(closed_loop(leg, args.concurrency, args.duration))
    f = leg.figures
    f["rps"], f["failed"] = ok / seconds, failed
    if leg.pid:
        f["cpu_us"], f["cpu_share"] = cpu / max(ok, 1) * 1e6, cpu / seconds
    if leg is direct:
        f["p50_ms"] = asyncio.run(paired([leg], args.c1_requests, False))[0]
        f["ttft_ms"] = asyncio.run(paired([leg], args.c1_requests, True))[0]
        f["base_p50_ms"], f["base_ttft_ms"] = f["p50_ms"], f["ttft_ms"]
        return
    medians = asyncio.run(paired([direct, leg], args.c1_requests, False, grpc_address))
    f["base_p50_ms"], f["p50_ms"] = medians[0], medians[1]
    if grpc_address:
        f["grpc_p50_ms"] = medians[2]
    f["base_ttft_ms"], f["ttft_ms"] = asyncio.run(paired([direct, leg], args.c1_requests, True))


def report(legs: dict[str, Leg]) -> str:
    p, lite = legs["policyd"].figures, legs.get("litellm")
    head = ("leg", "req/s", "failed", "gw CPU", "CPU us/req", "p50 c=1", "added", "TTFT", "added")
    rows = ["{:8} {:>8} {:>6} {:>7} {:>10} {:>8} {:>7} {:>7} {:>7}".format(*head)]
    for leg in legs.values():
        f = leg.figures
        added, tt = f["p50_ms"] - f["base_p50_ms"], f["ttft_ms"] - f["base_ttft_ms"]
        rows.append(
            f"{leg.name:8} {f['rps']:8.0f} {f['failed']:6.0f} {f.get('cpu_share', 0):7.2f} {f.get('cpu_us', 0):10.0f} "
            f"{f['p50_ms']:8.2f} {added:7.2f} {f['ttft_ms']:7.2f} {tt:7.2f}"
        )
    grpc_p50 = p["grpc_p50_ms"]
    rows.append(f"policyd's gRPC door, same daemon, interleaved: p50 c=1 {grpc_p50:.2f} ms (HTTP {p['p50_ms']:.2f} ms)")
    rows.append("'added': the leg's median minus that of direct calls interleaved with it, request by request")
    rows.append("")
    rows.append("target                                   measured      verdict")
    if lite is not None:
        lf = lite.figures
        capacity = (1e6 / p["cpu_us"]) / (1e6 / lf["cpu_us"])
        rows.append(
            f"req/s per core >= 10x LiteLLM's (1/CPU)  {capacity:8.1f}x     {'met' if capacity >= 10 else 'MISSED'}"
        )
        rows.append(f"  (closed-loop req/s ratio as measured: {p['rps'] / lf['rps']:.1f}x)")
        cpu = p["cpu_us"] / lf["cpu_us"]
        rows.append(f"CPU per request <= 1/10 of LiteLLM's     {cpu:8.3f}      {'met' if cpu <= 0.1 else 'MISSED'}")
    added = p["p50_ms"] - p["base_p50_ms"]
    rows.append(f"added p50 at c=1 <= 1 ms over direct     {added:8.2f} ms   {'met' if added <= 1 else 'MISSED'}")
    ttft = p["ttft_ms"] - p["base_ttft_ms"]
    rows.append(f"streaming TTFT overhead <= 1 ms          {ttft:8.2f} ms   {'met' if ttft <= 1 else 'MISSED'}")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--litellm", default=str(ROOT / ".venv-litellm" / "bin" / "litellm"), help="the litellm CLI")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of closed-loop load per gateway")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--c1-requests", type=int, default=300, help="requests one at a time, per figure")
    p.add_argument("--json", type=Path, default=None, help="also write each leg's figures as JSON (make bench)")
    args = p.parse_args()
    if LOAD_CPU:
        os.sched_setaffinity(0, {int(LOAD_CPU[-1])})
    work = Path(tempfile.mkdtemp(prefix="bench-openai-"))
    up_port, http_port, grpc_port, lite_port = (free_port() for _ in range(4))
    upstream = f"http://127.0.0.1:{up_port}"
    legs: dict[str, Leg] = {}
    with process([*LOAD_CPU, sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--port", str(up_port)]):
        time.sleep(1.0)
        legs["direct"] = Leg("direct", f"{upstream}/v1/chat/completions", "bench-model")
        measure(legs["direct"], legs["direct"], args)
        (work / "policy.yaml").write_text(POLICYD_CONFIG.format(upstream=upstream), encoding="utf-8")
        policyd = [*SERVER_CPU, sys.executable, "-m", "policyd", "serve", "--config", str(work / "policy.yaml"),
                   "--listen", f"127.0.0.1:{grpc_port}", "--http-listen", f"127.0.0.1:{http_port}",
                   "--data-dir", str(work / "data")]  # fmt: skip
        with process(policyd) as proc:
            wait_http(f"http://127.0.0.1:{http_port}/v1/models", proc)
            legs["policyd"] = Leg("policyd", f"http://127.0.0.1:{http_port}/v1/chat/completions", "default", proc.pid)
            measure(legs["policyd"], legs["direct"], args, f"127.0.0.1:{grpc_port}")
        if Path(args.litellm).exists():
            (work / "litellm.yaml").write_text(LITELLM_CONFIG.format(upstream=upstream), encoding="utf-8")
            # No fetch of the cost map from the internet; the master key its start-up insists on.
            lite_env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": MASTER_KEY}
            litellm = [*SERVER_CPU, args.litellm, "--config", str(work / "litellm.yaml"), "--host", "127.0.0.1",
                       "--port", str(lite_port), "--num_workers", "1"]  # fmt: skip
            with process(litellm, cwd=work, env=lite_env) as proc:
                wait_http(f"http://127.0.0.1:{lite_port}/health/liveliness", proc)
                url = f"http://127.0.0.1:{lite_port}/v1/chat/completions"
                legs["litellm"] = Leg("litellm", url, "bench-model", proc.pid)
                measure(legs["litellm"], legs["direct"], args)
        else:
            print(f"litellm not found at {args.litellm}: its leg is skipped", file=sys.stderr)
    print(report(legs))
    if args.json is not None:
        args.json.write_text(json.dumps({name: leg.figures for name, leg in legs.items()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
