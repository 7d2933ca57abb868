"""CPU per request of the gRPC servicer in process: ``PolicyServicer.Complete`` called in a loop, no gRPC.

The daemon is built as ``policyd serve`` builds it, on ``bench/engine_cpu.py``'s policy (the
simulated provider answering at once, cache and ledger on), and its servicer is called with
each request's body parsed from bytes, as grpc hands it over: what is measured is the event
loop's own work for one ``Complete`` (conversion, the engine's pipeline, the replay memo, the
reply), without grpc's. ``hits`` repeats one prompt (after the first, every request a hit,
replayed from memory where the tree has ``policyd/server/replay.py``); ``misses`` makes every
prompt new. Each tree runs in a process of its own (``--tree NAME=PATH``), the trees
alternating round by round; the figure is the loop thread's CPU time per request, median of
the rounds.

    python bench/servicer_cpu.py --tree base=/tmp/base --tree new=. --rounds 5

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
sys.path[:0] = [str(ROOT)]

from bench.engine_cpu import POLICY  # noqa: E402

CHILD = """
import asyncio, json, sys, time
from pathlib import Path
from policyd.daemon import DaemonOptions, build_daemon
from policyd.server.servicer import PolicyServicer
from policyd.v1 import policyd_pb2 as pb

config, data, count, unique = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"

class Context:
    def time_remaining(self):
        return 9.9
    def invocation_metadata(self):
        return ()

def body(i):
    text = f"benchmark prompt number {i} of a run" if unique else "the same benchmark prompt"
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)]).SerializeToString()

async def main():
    d = build_daemon(DaemonOptions(config_path=config, data_dir=Path(data), entry_points=False))
    servicer, context = PolicyServicer(d), Context()
    warm = max(200, count // 10)
    bodies = [body(i) for i in range(warm + count)]
    for raw in bodies[:warm]:
        await servicer.Complete(pb.CompleteRequest.FromString(raw), context)
    start = time.thread_time()
    replies = [await servicer.Complete(pb.CompleteRequest.FromString(raw), context) for raw in bodies[warm:]]
    used = time.thread_time() - start
    await d.aclose()
    ok = (pb.OUTCOME_STATUS_ACCEPTED, pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED)
    statuses = [(pb.CompleteResponse.FromString(r) if isinstance(r, bytes) else r).status for r in replies]
    memo = getattr(servicer, "replays", None)
    figures = {"cpu_us": used * 1e6 / count, "failed": sum(s not in ok for s in statuses)}
    figures["replayed"] = memo.replayed if memo is not None else 0
    print(json.dumps(figures))

try:
    import uvloop  # the loop ``policyd serve`` runs on when it is installed
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""

SCENARIOS = {"hits": False, "misses": True}
"""name → every prompt distinct."""


def measure(tree: Path, scenario: str, count: int, tmp: Path) -> tuple[float, int]:
    """The loop thread's CPU µs per request, and how many requests were replayed from memory."""
    folder = Path(tempfile.mkdtemp(dir=tmp))
    config = folder / "policy.yaml"
    config.write_text(textwrap.dedent(POLICY.format(cache="")), encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "plugins")]),
        "POLICYD_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    args = [str(config), str(folder / "data"), str(count), "1" if SCENARIOS[scenario] else "0"]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, cwd=tree, check=True
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    if figures["failed"]:
        raise RuntimeError(f"{tree} {scenario}: {figures['failed']} requests did not succeed")
    return float(figures["cpu_us"]), int(figures["replayed"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", action="append", default=[], help="NAME=PATH of a source tree (repeatable)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=10000)
    p.add_argument("--only", default=",".join(SCENARIOS))
    args = p.parse_args(argv)
    trees = [(n, Path(t).resolve()) for n, t in (s.split("=", 1) for s in args.tree or [f"this={ROOT}"])]
    found: dict[tuple[str, str], list[float]] = {}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="policyd-servicer-cpu-") as tmp:
        for r in range(args.rounds):
            order = trees if r % 2 == 0 else trees[::-1]
            for scenario in args.only.split(","):
                for name, tree in order:
                    us, replayed = measure(tree, scenario, args.requests, Path(tmp))
                    found.setdefault((scenario, name), []).append(us)
                    line = f"round {r + 1}: {scenario:8} {name:12} {us:6.1f} us/req, {replayed} replayed"
                    print(line, file=sys.stderr, flush=True)
            load.append(os.getloadavg()[0])
    loads = f"{min(load):.1f}-{max(load):.1f}"
    print(f"medians of {args.rounds} rounds, {args.requests} requests each; load average {loads}")
    for scenario in args.only.split(","):
        cells = [f"{name} {statistics.median(found[(scenario, name)]):6.1f}" for name, _ in trees]
        print(f"{scenario:8} " + "  ".join(cells) + " us/req")
    return 0


if __name__ == "__main__":
    sys.exit(main())
