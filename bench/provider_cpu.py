"""CPU per call of the HTTP provider alone, against the lean-POST floor, trees interleaved.

A child process on the daemon's event loop (uvloop when installed) calls
``OpenAIProvider.complete`` (the ``openai-compatible`` provider, default settings) against
``bench/fake_upstream.py``, ``--concurrency`` calls in flight, and prints its CPU time per
call over the measured phase: the provider's whole path (request body, headers, clocks, the
lean client's POST and read, the answer's parsing) without the engine or gRPC. The
``ModelCall``\\ s are built before the measured phase: the engine builds them, not the
provider. ``--floor`` adds the row of ``bench/echo_server.py --upstream``'s POST in the same
harness (body built with orjson, ``LeanClient.post``, the answer read with orjson): the
least such a call can cost. Each tree runs in a process of its own (``--tree NAME=PATH``),
the trees alternating round by round; the figure is the median of the rounds.

    python bench/provider_cpu.py --tree base=/tmp/base --tree new=. --rounds 5 --floor

Not part of ``make bench``; ``bench/cpu_ab.py`` measures the whole daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSWER = "The answer is 42."
"""What ``bench/fake_upstream.py`` answers: every call of a run must get it."""

CHILD = """
import asyncio, json, sys, time
import orjson
mode, url, count, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
WARMUP = 500
prompts = [f"benchmark prompt number {i} of a run" for i in range(count + WARMUP + concurrency + 1)]

def floor():
    from policyd_plugins.http.lean import LeanClient
    client = LeanClient(url, pool_size=100, connect_s=5.0)
    headers = {"Content-Type": "application/json"}
    target = url + "/v1/chat/completions"
    async def one(i):
        body = orjson.dumps({"model": "bench-model", "messages": [{"role": "user", "content": prompts[i]}]})
        answer = await client.post(target, body, headers, limit=1 << 20, got_bytes=lambda: None)
        return orjson.loads(answer.body)["choices"][0]["message"]["content"]
    return one

def provider():
    from policyd_plugins.openai.provider import OpenAIProvider, OpenAISettings
    from policyd.types import Message, ModelCall, ModelSpec, Role
    p = OpenAIProvider("fake", OpenAISettings(base_url=url + "/v1"))
    spec = ModelSpec(id="bench-model", provider="fake", upstream="bench-model", input_usd_per_mtok=0.1,
                     output_usd_per_mtok=0.4, context_window=32000, license="apache-2.0")
    calls = [ModelCall(model=spec, messages=(Message(role=Role.USER, content=t),), timeout_s=10.0) for t in prompts]
    async def one(i):
        return (await p.complete(calls[i])).message.content
    return one

async def main():
    one = floor() if mode == "floor" else provider()
    n = 0
    answers = set()
    async def worker(total):
        nonlocal n
        while n < total:
            n += 1
            answers.add(await one(n))
    async def run(total):
        await asyncio.gather(*(worker(total) for _ in range(concurrency)))
    await run(WARMUP)
    n = 0
    start = time.process_time()
    await run(count)
    print(json.dumps({"cpu_us": (time.process_time() - start) * 1e6 / count, "answers": sorted(answers)}))

try:
    import uvloop  # the loop ``policyd serve`` runs on when it is installed
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def measure(tree: Path, mode: str, url: str, args: argparse.Namespace) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "plugins")]),
        "POLICYD_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    cmd = [sys.executable, "-c", CHILD, mode, url, str(args.requests), str(args.concurrency)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    if figures["answers"] != [ANSWER]:
        raise RuntimeError(f"{tree} {mode}: answered {figures['answers'][:3]}, not the fake upstream's {ANSWER!r}")
    return float(figures["cpu_us"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", action="append", default=[], help="NAME=PATH of a source tree (repeatable)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=6000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--floor", action="store_true", help="also measure the lean POST alone (the floor)")
    args = p.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    from bench import run as runner

    trees = [(n, Path(t).resolve()) for n, t in (s.split("=", 1) for s in args.tree or [f"this={ROOT}"])]
    upstream = runner.start("upstream", [sys.executable, str(ROOT / "bench" / "fake_upstream.py")], "listening on")
    url = f"http://{upstream.address}"
    found: dict[str, list[float]] = {}
    load = [os.getloadavg()[0]]
    try:
        for r in range(args.rounds):
            jobs = [(name, tree, "provider") for name, tree in (trees if r % 2 == 0 else trees[::-1])]
            if args.floor:
                jobs.append(("floor", trees[0][1], "floor"))
            for name, tree, mode in jobs:
                us = measure(tree, mode, url, args)
                found.setdefault(name, []).append(us)
                print(f"round {r + 1}: {name:12} {us:6.1f} us/call", file=sys.stderr, flush=True)
            load.append(os.getloadavg()[0])
    finally:
        upstream.stop()
    print(f"medians of {args.rounds} rounds, {args.requests} calls each; load average {min(load):.1f}-{max(load):.1f}")
    for name, runs in found.items():
        print(f"{name:12} {statistics.median(runs):6.1f} us/call   runs {' '.join(f'{x:.1f}' for x in runs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
