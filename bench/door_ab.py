"""Interleaved A/B of the OpenAI front door's CPU per request, with LiteLLM's proxy in the same rounds.

The front-door half of ``bench/openai_vs_litellm.py`` (the same fake upstream, policy, load
and pinning: gateways on core 0, the load and the upstream on core 1), run against one or
more source trees (``--tree NAME=PATH``, e.g. a ``git archive`` of ``main`` and the work
tree) and, when its harness is installed, LiteLLM's proxy. Every gateway stays up for the
whole run; each round drives every one in turn with the same closed loop, so other load on
a shared machine hits them alike. Prints each gateway's CPU µs per request per round, the
medians, and the per-core ratio of LiteLLM's median to each tree's.

    nice python bench/door_ab.py --tree base=/tmp/base --tree new=. --rounds 5 --duration 6 \\
        --litellm /work/wt-openai/.venv-litellm/bin/litellm
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench import openai_vs_litellm as ovl  # noqa: E402
from bench.http_servers import free_port  # noqa: E402
from bench.run import LOAD_CPU, SERVER_CPU  # noqa: E402


def start_policyd(stack: ExitStack, tree: Path, upstream: str, work: Path, name: str) -> ovl.Leg:
    """``policyd serve`` from ``tree`` with the comparison's config (default settings, one-model passthrough)."""
    config = work / f"{name}.yaml"
    config.write_text(ovl.POLICYD_CONFIG.format(upstream=upstream), encoding="utf-8")
    http_port, grpc_port = free_port(), free_port()
    env = {**ovl.ENV, "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "plugins")])}
    argv = [*SERVER_CPU, sys.executable, "-m", "policyd", "serve", "--config", str(config),
            "--listen", f"127.0.0.1:{grpc_port}", "--http-listen", f"127.0.0.1:{http_port}",
            "--data-dir", str(work / f"data-{name}")]  # fmt: skip
    proc = stack.enter_context(ovl.process(argv, cwd=tree, env=env))
    ovl.wait_http(f"http://127.0.0.1:{http_port}/v1/models", proc)
    return ovl.Leg(name, f"http://127.0.0.1:{http_port}/v1/chat/completions", "default", proc.pid)


def start_litellm(stack: ExitStack, litellm: str, upstream: str, work: Path) -> ovl.Leg:
    (work / "litellm.yaml").write_text(ovl.LITELLM_CONFIG.format(upstream=upstream), encoding="utf-8")
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": ovl.MASTER_KEY}
    argv = [*SERVER_CPU, litellm, "--config", str(work / "litellm.yaml"), "--host", "127.0.0.1",
            "--port", str(port), "--num_workers", "1"]  # fmt: skip
    proc = stack.enter_context(ovl.process(argv, cwd=work, env=env))
    ovl.wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc)
    return ovl.Leg("litellm", f"http://127.0.0.1:{port}/v1/chat/completions", "bench-model", proc.pid)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", action="append", default=[], help="NAME=PATH of a source tree (repeatable)")
    p.add_argument("--litellm", default="", help="the litellm CLI; its leg is skipped when absent")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=6.0, help="seconds of closed-loop load per gateway and round")
    p.add_argument("--concurrency", type=int, default=32)
    args = p.parse_args(argv)
    if LOAD_CPU:
        os.sched_setaffinity(0, {int(LOAD_CPU[-1])})
    trees = [(n, Path(t).resolve()) for n, t in (s.split("=", 1) for s in args.tree or [f"this={ROOT}"])]
    work = Path(tempfile.mkdtemp(prefix="bench-door-ab-"))
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    cpu: dict[str, list[float]] = {}
    loads: list[float] = []
    with ExitStack() as stack:
        stack.enter_context(
            ovl.process([*LOAD_CPU, sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--port", str(up_port)])
        )
        time.sleep(1.0)
        legs = [start_policyd(stack, tree, upstream, work, name) for name, tree in trees]
        if args.litellm and Path(args.litellm).exists():
            legs.append(start_litellm(stack, args.litellm, upstream, work))
        elif args.litellm:
            print(f"litellm not found at {args.litellm}: its leg is skipped", file=sys.stderr)
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            order = legs[r % len(legs) :] + legs[: r % len(legs)]
            for leg in order:
                ok, failed, _, used = asyncio.run(ovl.closed_loop(leg, args.concurrency, args.duration))
                cpu.setdefault(leg.name, []).append(used / max(ok, 1) * 1e6)
                if failed:
                    print(f"  {leg.name}: {failed} failed", file=sys.stderr)
            line = "  ".join(f"{leg.name} {cpu[leg.name][-1]:7.0f}" for leg in legs)
            print(f"round {r + 1}: CPU us/req  {line}  (load {loads[-1]:.2f})", flush=True)
    print(f"\nmedians of {args.rounds} rounds, {args.duration:g} s at c={args.concurrency} each; "
          f"load average {min(loads):.2f}-{max(loads):.2f}")  # fmt: skip
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    for name, value in medians.items():
        ratio = ""
        if "litellm" in medians and name != "litellm":
            per_round = statistics.median(lite / mine for lite, mine in zip(cpu["litellm"], cpu[name], strict=True))
            ratio = (
                f"   LiteLLM ÷ this: {medians['litellm'] / value:5.1f}x (median of the rounds' ratios {per_round:.1f}x)"
            )
        print(f"  {name:10} {value:7.0f} us/req  (rounds {min(cpu[name]):.0f}-{max(cpu[name]):.0f}){ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
