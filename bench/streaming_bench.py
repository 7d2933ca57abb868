"""Streaming overhead: time to first token and per-chunk cost through policyd, against direct calls.

Three processes: the fake upstream (``bench/fake_upstream.py``: 17 ``chat.completion.chunk``
events in OpenAI's SSE format, then usage and ``[DONE]``), one ``policyd serve`` with its
default settings (cache and ledger on) and a one-model passthrough policy on that upstream
through the ``openai-compatible`` provider, serving gRPC and the OpenAI HTTP front door; and
this client. Every prompt is unique, so no answer is a cache hit.

Legs, interleaved request by request so they share the machine's load:

* **direct**: aiohttp streams the answer from the fake upstream itself;
* **grpc**: ``PolicyService.StreamComplete`` through policyd (grpc.aio stub);
* **http**: ``POST /v1/chat/completions`` with ``"stream": true`` through policyd's front
  door (aiohttp: the same client stack as the direct leg).

Each leg measures time to first token (TTFT: send → first non-empty content) and the whole
stream (send → end). "Added" is the leg's median minus the direct leg's median. The
per-chunk overhead is (added whole stream - added TTFT) / 16, the 16 chunks after the
first content, which the upstream sends back to back (``--chunk-gap-ms`` spaces them).
At concurrency 1 the rounds run one at a time. At concurrency C the legs take turns in
slices of ``--slice`` seconds, each slice all C workers streaming on one leg, whole cycles
of the legs for ``--duration`` seconds: every leg, the direct one included, is measured
under the same load, C concurrent streams of its own (each worker's first stream of a
slice, its ramp-up, is not counted). The daemon's CPU per stream is read from ``/proc``.

``--compare TREE`` starts a second daemon from another checkout (its ``policyd`` and
``plugins`` on ``PYTHONPATH``, same interpreter) and interleaves its legs too: an A/B
of two builds under the same load, e.g. ``--compare /work/main``.

    PYTHONPATH=.:plugins python bench/streaming_bench.py --rounds 300 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench.figures import Row  # noqa: E402
from bench.openai_vs_litellm import POLICYD_CONFIG  # noqa: E402
from bench.run import ENV, LOAD_CPU, Proc, start  # noqa: E402

CHUNKS_AFTER_FIRST = 16
"""Chunks of the fake upstream's stream after the one carrying the first content (role + 15 + finish - 1)."""
TTFT_TARGET_MS = 0.5
PROMPTS = itertools.count()


@dataclass
class Sample:
    ttft: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    failed: int = 0


Leg = Callable[[], Awaitable[tuple[float, float]]]
"""One streamed request: (seconds to the first content, seconds to the end); raises on failure."""


def prompt() -> str:
    return f"[stream #{next(PROMPTS)} {time.time_ns()}] What is 6 times 7? Answer with the number only."


def sse_body(model: str) -> bytes:
    payload = {"model": model, "messages": [{"role": "user", "content": prompt()}], "stream": True}
    return json.dumps(payload | {"stream_options": {"include_usage": True}}).encode()


def http_leg(session: Any, url: str, model: str) -> Leg:
    async def one() -> tuple[float, float]:
        data = sse_body(model)
        start = time.perf_counter()
        first = 0.0
        async with session.post(url, data=data, headers={"content-type": "application/json"}) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{url}: HTTP {resp.status}: {(await resp.read())[:200]!r}")
            async for line in resp.content:
                if not first and b'"content":"' in line and b'"content":""' not in line:
                    first = time.perf_counter()
        end = time.perf_counter()
        if not first:
            raise RuntimeError(f"{url}: the stream carried no content")
        return first - start, end - start

    return one


def grpc_leg(stub: Any) -> Leg:
    from policyd.v1 import policyd_pb2 as pb

    async def one() -> tuple[float, float]:
        request = pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=prompt())])
        start = time.perf_counter()
        first = 0.0
        final = False
        async for event in stub.StreamComplete(request, timeout=10):
            kind = event.WhichOneof("event")
            if not first and kind == "delta" and event.delta:
                first = time.perf_counter()
            final = final or kind == "final"
        end = time.perf_counter()
        if not first or not final:
            raise RuntimeError("StreamComplete: no content or no final event")
        return first - start, end - start

    return one


async def rounds(legs: dict[str, Leg], samples: dict[str, Sample], n: int) -> None:
    """``n`` rounds of one request per leg, one at a time, the legs' order rotating."""
    names = list(legs)
    for i in range(n):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            try:
                ttft, total = await legs[name]()
            except Exception:
                samples[name].failed += 1
                continue
            samples[name].ttft.append(ttft * 1000)
            samples[name].total.append(total * 1000)


async def slices(
    legs: dict[str, Leg], samples: dict[str, Sample], concurrency: int, duration: float, slice_s: float
) -> None:
    """Whole cycles of the legs, each leg in turn streamed by ``concurrency`` workers for ``slice_s``.

    Rounds that rotate the legs within each worker (as at concurrency 1) would give each leg
    the share of the workers that its time per stream makes: the quick direct leg ran at
    about 0.2 concurrent streams while a daemon's leg ran at 13 of the 16, so "added" was a
    loaded daemon against an idle upstream. Slices give every leg all the workers.
    """

    async def worker(leg: Leg, sample: Sample, end: float) -> None:
        """Streams until ``end``, two at least: the first is the ramp-up (all workers start at once), not counted."""
        for n in itertools.count():
            if n >= 2 and time.perf_counter() >= end:
                return
            try:
                ttft, total = await leg()
            except Exception:
                sample.failed += 1
                continue
            if n:
                sample.ttft.append(ttft * 1000)
                sample.total.append(total * 1000)

    stop_at = time.perf_counter() + duration
    while time.perf_counter() < stop_at:
        for name, leg in legs.items():
            end = time.perf_counter() + slice_s
            await asyncio.gather(*(worker(leg, samples[name], end) for _ in range(concurrency)))


async def measure(
    targets: dict[str, str], concurrency: int, n: int, duration: float, warmup: int, slice_s: float = 0.1
) -> dict[str, Any]:
    """Medians per leg at one concurrency; ``targets`` maps a daemon's label to its ``grpc|http`` addresses."""
    import aiohttp
    import grpc.aio

    from policyd.v1 import policyd_pb2_grpc as pb_grpc

    connector = aiohttp.TCPConnector(limit=4 * concurrency + 8)
    async with aiohttp.ClientSession(connector=connector) as session:
        channels = []
        legs: dict[str, Leg] = {"direct": http_leg(session, f"{targets['upstream']}/v1/chat/completions", "bench")}
        for label, addresses in targets.items():
            if label == "upstream":
                continue
            grpc_address, http_address = addresses.split("|")
            channel = grpc.aio.insecure_channel(grpc_address)
            channels.append(channel)
            legs[f"{label} grpc"] = grpc_leg(pb_grpc.PolicyServiceStub(channel))
            legs[f"{label} http"] = http_leg(session, f"http://{http_address}/v1/chat/completions", "default")
        try:
            await rounds(legs, {name: Sample() for name in legs}, warmup)
            samples = {name: Sample() for name in legs}
            if concurrency == 1:
                await rounds(legs, samples, n)
            else:
                await slices(legs, samples, concurrency, duration, slice_s)
        finally:
            for channel in channels:
                await channel.close()
    return summarize(samples)


def summarize(samples: dict[str, Sample]) -> dict[str, Any]:
    """Per leg: count, failures, TTFT and whole-stream p50; added figures against the direct leg."""
    out: dict[str, Any] = {}
    base = samples["direct"]
    base_ttft, base_total = statistics.median(base.ttft), statistics.median(base.total)
    for name, s in samples.items():
        if not s.ttft:
            out[name] = {"count": 0, "failed": s.failed}
            continue
        ttft, total = statistics.median(s.ttft), statistics.median(s.total)
        fig = {"count": len(s.ttft), "failed": s.failed, "ttft_p50_ms": round(ttft, 3), "total_p50_ms": round(total, 3)}
        if name != "direct":
            added_ttft, added_total = ttft - base_ttft, total - base_total
            fig |= {
                "added_ttft_ms": round(added_ttft, 3),
                "added_total_ms": round(added_total, 3),
                "per_chunk_us": round((added_total - added_ttft) * 1000 / CHUNKS_AFTER_FIRST, 1),
            }
        out[name] = fig
    return out


def daemon(label: str, tree: Path, upstream: str, folder: Path) -> Proc:
    """``policyd serve`` from ``tree`` (its sources first on PYTHONPATH) on gRPC and HTTP."""
    config = folder / f"{label}.yaml"
    config.write_text(POLICYD_CONFIG.format(upstream=upstream), encoding="utf-8")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "plugins")])}
    http_port = _free_port()
    cmd = [sys.executable, "-m", "policyd", "--log-level", "WARNING", "serve", "--config", str(config)]
    cmd += ["--listen", "127.0.0.1:0", "--http-listen", f"127.0.0.1:{http_port}", "--data-dir", str(folder / label)]
    proc = start(label, cmd, "policyd listening on", env=env, cwd=tree)  # ``-m`` puts the cwd first on sys.path
    proc.address = f"{proc.address}|127.0.0.1:{http_port}"
    return proc


def _free_port() -> int:
    from bench.http_servers import free_port

    return free_port()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the processes, measure at concurrency 1 and ``--stream-concurrency``; returns the figures."""
    procs: list[Proc] = []
    results: dict[str, Any] = {"load_before": os.getloadavg()[0], "chunk_gap_ms": args.chunk_gap_ms}
    affinity = os.sched_getaffinity(0)
    try:
        upstream = start(
            "upstream",
            [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--chunk-gap-ms", str(args.chunk_gap_ms)],
            "fake upstream listening on",
        )
        procs.append(upstream)
        targets = {"upstream": f"http://{upstream.address}"}
        with tempfile.TemporaryDirectory(prefix="policyd-stream-bench-") as tmp:
            trees = {"policyd": ROOT, **({"base": Path(args.compare).resolve()} if args.compare else {})}
            daemons = {label: daemon(label, tree, targets["upstream"], Path(tmp)) for label, tree in trees.items()}
            procs += daemons.values()
            targets |= {label: proc.address for label, proc in daemons.items()}
            if LOAD_CPU:
                os.sched_setaffinity(0, {int(LOAD_CPU[-1])})
            for c in (1, args.stream_concurrency):
                cpu0 = {label: proc.cpu_s() for label, proc in daemons.items()}
                n, duration = (args.rounds, 0.0) if c == 1 else (10**9, args.duration)
                figures = asyncio.run(measure(targets, c, n, duration, args.stream_warmup, args.slice))
                for label, proc in daemons.items():
                    streams = figures[f"{label} grpc"]["count"] + figures[f"{label} http"]["count"]
                    figures[f"{label} cpu_us_per_stream"] = round((proc.cpu_s() - cpu0[label]) * 1e6 / max(1, streams))
                results[f"c{c}"] = figures
    finally:
        os.sched_setaffinity(0, affinity)
        for proc in procs:
            if proc.popen.poll() is None:
                proc.stop()
    results["load_after"] = os.getloadavg()[0]
    results["concurrency"] = args.stream_concurrency
    return results


def rows(results: dict[str, Any]) -> list[Row]:
    """This module's rows of the ``make bench`` summary (see :mod:`bench.figures`)."""
    out: list[Row] = []
    c = results.get("concurrency", 16)
    why = f"streaming bench failed: {results['error']}" if "error" in results else ""
    for key, level in (("c1", 1), (f"c{c}", c)):
        for leg, door in (("policyd grpc", "gRPC"), ("policyd http", "HTTP")):
            added = results.get(key, {}).get(leg, {}).get("added_ttft_ms")
            out.append(Row(f"streaming TTFT added, {door}, c={level}", added, TTFT_TARGET_MS, "ms", "<=", why))
    return out


def render(results: dict[str, Any]) -> str:
    lines = [
        f"streaming: 17 chunks per answer, chunk gap {results['chunk_gap_ms']} ms; load average"
        f" {results['load_before']:.1f} before, {results['load_after']:.1f} after",
        f"{'leg':14} {'c':>3} {'streams':>7} {'failed':>6} {'TTFT p50':>9} {'added':>7} {'whole p50':>9}"
        f" {'added':>7} {'per chunk':>9}",
    ]
    for key in ("c1", f"c{results.get('concurrency', 16)}"):
        figures = results.get(key, {})
        for name, f in figures.items():
            if name.endswith("cpu_us_per_stream") or not f.get("count"):
                continue
            lines.append(
                f"{name:14} {key[1:]:>3} {f['count']:7d} {f['failed']:6d} {f['ttft_p50_ms']:9.3f}"
                f" {_opt(f.get('added_ttft_ms')):>7} {f['total_p50_ms']:9.3f} {_opt(f.get('added_total_ms')):>7}"
                f" {_opt(f.get('per_chunk_us'), 'us', 1):>9}"
            )
        cpu = [f"{name.split()[0]} {v} us" for name, v in figures.items() if name.endswith("cpu_us_per_stream")]
        if cpu:
            lines.append(f"  daemon CPU per stream at c={key[1:]} (both doors): {', '.join(cpu)}")
    lines.append("  added = the leg's median minus the direct leg's; per chunk = (added whole - added TTFT) / 16")
    return "\n".join(lines)


def _opt(value: float | None, unit: str = "", digits: int = 3) -> str:
    return "-" if value is None else f"{value:+.{digits}f}{unit}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rounds", type=int, default=300, help="streaming rounds at concurrency 1 (one request per leg)")
    p.add_argument("--stream-concurrency", type=int, default=16, help="concurrent streaming workers")
    p.add_argument("--stream-warmup", type=int, default=20, help="unmeasured streaming rounds before each phase")
    p.add_argument("--chunk-gap-ms", type=float, default=0.0, help="the fake upstream's gap between stream events")
    p.add_argument("--slice", type=float, default=0.1, help="seconds each leg streams alone at concurrency C")
    p.add_argument("--compare", default="", help="another checkout whose daemon runs interleaved (A/B)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.add_argument("--duration", type=float, default=5.0, help="seconds of the concurrent phase")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = p.parse_args()
    results = run(args)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
