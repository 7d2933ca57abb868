"""CPU per request of the engine alone: ``Engine.complete`` in process, no gRPC, for A/B of engine changes.

The daemon is built as ``policyd serve`` builds it (its declared pipeline: rate limits,
budgets, the decision span, the cache, retries, the ledger) on the hot-path scenarios'
policy, with the simulated provider answering at once in process instead of the fake
upstream, so what is measured is the engine's own path: ``default`` (cache and ledger on,
every prompt distinct), ``nocache`` (the plan's cache off), ``cache`` (every request a hit).
Each tree runs in a process of its own (``--tree NAME=PATH``, as ``bench/cpu_ab.py``), the
trees alternating round by round; the figure is the process's CPU time (every thread:
the cache and ledger writers too) per request, median of the rounds.

    python bench/engine_cpu.py --tree base=/tmp/base --tree new=. --rounds 5

Not part of ``make bench``; ``bench/cpu_ab.py`` measures the whole daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

POLICY = """
version: bench
defaults: {{max_cost_usd: 10.0, deadline_ms: 10000}}
providers:
  simulated: {{kind: simulated, latency_scale: 0.0}}
catalogs: []
models:
  bench-model:
    provider: simulated
    upstream: bench-model
    input_usd_per_mtok: 0.1
    output_usd_per_mtok: 0.4
    context_window: 32000
    license: apache-2.0
policies:
  default:
    rules:
      - name: bench
        plan: {{strategy: single, params: {{model: bench-model}}{cache}}}
"""

SCENARIOS = {"default": ("", True), "nocache": (", cache: {enabled: false}", False), "cache": ("", False)}
"""name → (the plan's cache setting, every prompt distinct)."""

CHILD = """
import asyncio, json, sys, time
from pathlib import Path
from policyd.daemon import DaemonOptions, build_daemon
from policyd.types import Message, Request, Role

config, data, count, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[5])
unique = sys.argv[4] == "1"

async def main():
    d = build_daemon(DaemonOptions(config_path=config, data_dir=Path(data), entry_points=False))
    engine = d.engine
    n = 0
    failed = []
    async def one(i):
        prompt = f"benchmark prompt number {i} of a run" if unique else "the same benchmark prompt"
        request = Request(request_id=str(i), messages=(Message(role=Role.USER, content=prompt),),
                          deadline=time.monotonic() + 10.0)
        outcome = await engine.complete(request)
        if not outcome.status.is_success:
            failed.append(outcome.status.value)
    async def worker(w, total):
        nonlocal n
        while n < total:
            n += 1
            await one(n)
    async def run(total):
        await asyncio.gather(*(worker(w, total) for w in range(concurrency)))
    await run(max(200, count // 10))  # warm-up (and, for cache hits, the stored answer)
    start, n = time.process_time(), 0
    await run(count)
    used = time.process_time() - start
    await d.aclose()
    print(json.dumps({"cpu_us": used * 1e6 / count, "failed": len(failed)}))

try:
    import uvloop  # the loop ``policyd serve`` runs on when it is installed
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def measure(tree: Path, scenario: str, count: int, concurrency: int, tmp: Path) -> float:
    cache, unique = SCENARIOS[scenario]
    folder = Path(tempfile.mkdtemp(dir=tmp))
    config = folder / "policy.yaml"
    config.write_text(textwrap.dedent(POLICY.format(cache=cache)), encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "plugins")]),
        "POLICYD_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    args = [str(config), str(folder / "data"), str(count), "1" if unique else "0", str(concurrency)]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, cwd=tree, check=True
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    if figures["failed"]:
        raise RuntimeError(f"{tree} {scenario}: {figures['failed']} requests did not succeed")
    return float(figures["cpu_us"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", action="append", default=[], help="NAME=PATH of a source tree (repeatable)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--only", default=",".join(SCENARIOS))
    args = p.parse_args(argv)
    trees = [(n, Path(t).resolve()) for n, t in (s.split("=", 1) for s in args.tree or [f"this={ROOT}"])]
    found: dict[tuple[str, str], list[float]] = {}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="policyd-engine-cpu-") as tmp:
        for r in range(args.rounds):
            order = trees if r % 2 == 0 else trees[::-1]
            for scenario in args.only.split(","):
                for name, tree in order:
                    us = measure(tree, scenario, args.requests, args.concurrency, Path(tmp))
                    found.setdefault((scenario, name), []).append(us)
                    print(f"round {r + 1}: {scenario:8} {name:12} {us:6.0f} us/req", file=sys.stderr, flush=True)
            load.append(os.getloadavg()[0])
    loads = f"{min(load):.1f}-{max(load):.1f}"
    print(f"medians of {args.rounds} rounds, {args.requests} requests each; load average {loads}")
    for scenario in args.only.split(","):
        cells = [f"{name} {statistics.median(found[(scenario, name)]):6.0f}" for name, _ in trees]
        print(f"{scenario:8} " + "  ".join(cells) + " us/req")
    return 0


if __name__ == "__main__":
    sys.exit(main())
