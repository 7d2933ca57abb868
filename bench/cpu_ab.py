"""Interleaved A/B of the daemon's CPU time per request, for the hot-path work.

Runs the same scenarios against one or more source trees (``--tree NAME=PATH``, e.g. a
``git archive`` of the commit before a change and the work tree after it), alternating
them round by round so that other load on a shared machine hits both alike, and prints
the median CPU µs per request of each (from ``/proc/<pid>/stat``, as ``bench/run.py``
does) with its ratio to the bare grpc.aio echo server measured in the same rounds.

    python bench/cpu_ab.py --tree base=/tmp/base --tree new=. --rounds 3 --duration 5

Scenarios (``--only``): ``default`` (the default config: cache and ledger on, every
prompt distinct, so every request is a miss that stores its answer), ``nocache``
(``make bench``'s passthrough, cache off), ``cache`` (cache hits). ``--floor`` adds a row for the
echo server making one lean upstream POST per request (``bench/echo_server.py --upstream``): the
least a miss can cost on this stack, printed with its ratio to echo but not a target. Not part
of ``make bench``; ``bench/run.py`` prints the same scenarios for one tree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench import run as runner  # noqa: E402
from bench.scenarios import hotpath_scenarios  # noqa: E402

HOT_TARGETS = {"default": 0.50, "cache": 0.70}
"""Issue #21: CPU per request of the echo server ÷ policyd's, per scenario."""


def closed_cpu(proc: runner.Proc, target: str, args: argparse.Namespace, *extra: str) -> float:
    """One closed-loop run; the server's CPU µs per request (warm-up included in both counts)."""
    cpu0 = proc.cpu_s()
    mode = ["--mode", "open", "--rate", str(args.rate)] if args.rate else ["--mode", "closed"]
    out = runner.loadgen(
        target, *mode, "--concurrency", str(args.concurrency), "--duration", str(args.duration),
        "--warmup", str(args.warmup), *extra,
    )  # fmt: skip
    if out["errors"]:
        print(f"  warning: {out['errors']} errors", file=sys.stderr)
    return (proc.cpu_s() - cpu0) * 1e6 / max(1, out["count"] + args.warmup)


def daemon(tree: Path, config: str, folder: Path, key: str) -> runner.Proc:
    path = folder / f"{key}.yaml"
    path.write_text(config, encoding="utf-8")
    env = {**runner.ENV, "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "plugins")])}
    cmd = [sys.executable, "-m", "policyd", "--log-level", "WARNING", "serve"]
    cmd += ["--config", str(path), "--listen", "127.0.0.1:0", "--data-dir", str(folder / f"data-{key}")]
    return runner.start(key, cmd, "policyd listening on", env=env, cwd=tree)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", action="append", default=[], help="NAME=PATH of a source tree (repeatable)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rate", type=float, default=0.0, help="open loop at this rate instead of the closed loop")
    p.add_argument("--only", default="default,nocache,cache")
    p.add_argument(
        "--floor",
        action="store_true",
        help="also measure echo with one lean upstream POST per request (the floor of a miss; not a target)",
    )
    args = p.parse_args(argv)
    trees = [(n, Path(t).resolve()) for n, t in (s.split("=", 1) for s in args.tree or [f"this={ROOT}"])]
    wanted = args.only.split(",")
    upstream = runner.start("upstream", [sys.executable, str(ROOT / "bench" / "fake_upstream.py")], "listening on")
    url = f"http://{upstream.address}"
    found: dict[str, list[float]] = {}
    load = [os.getloadavg()[0]]
    try:
        with tempfile.TemporaryDirectory(prefix="policyd-ab-") as tmp:
            for r in range(args.rounds):
                echo = runner.start(
                    "echo", [sys.executable, str(ROOT / "bench" / "echo_server.py")], "echo listening on"
                )
                found.setdefault("echo", []).append(closed_cpu(echo, f"grpc://{echo.address}", args))
                echo.stop()
                if args.floor:
                    cmd = [sys.executable, str(ROOT / "bench" / "echo_server.py"), "--upstream", url]
                    floor = runner.start("echo-upstream", cmd, "echo listening on")
                    found.setdefault("echo+upstream", []).append(closed_cpu(floor, f"grpc://{floor.address}", args))
                    floor.stop()
                for key, config, extra in hotpath_scenarios(url):
                    if key not in wanted:
                        continue
                    for name, tree in trees if r % 2 == 0 else trees[::-1]:
                        proc = daemon(tree, config, Path(tmp), f"{name}-{key}-{r}")
                        try:
                            cpu = closed_cpu(proc, f"grpc://{proc.address}", args, *extra)
                        finally:
                            proc.stop()
                        found.setdefault(f"{key}/{name}", []).append(cpu)
                        print(f"round {r + 1}: {key:8} {name:10} {cpu:7.0f} us/req", file=sys.stderr, flush=True)
                load.append(os.getloadavg()[0])
    finally:
        upstream.stop()
    echo_us = statistics.median(found["echo"])
    print(f"load average during the rounds: {min(load):.1f}-{max(load):.1f}; echo {echo_us:.0f} us/req (median)")
    print(f"{'scenario/tree':24} {'median us/req':>13} {'runs':>24} {'x echo':>7} {'target':>7}")
    for key, runs in found.items():
        if key == "echo":
            continue
        if key == "echo+upstream":
            med = statistics.median(runs)
            runs_s = " ".join(f"{x:.0f}" for x in runs)
            print(f"{key:24} {med:13.0f} {runs_s:>24} {echo_us / med:7.2f} {'floor':>7}")
            continue
        med = statistics.median(runs)
        target = HOT_TARGETS.get(key.split("/")[0])
        runs_s = " ".join(f"{x:.0f}" for x in runs)
        print(f"{key:24} {med:13.0f} {runs_s:>24} {echo_us / med:7.2f} {f'>={target:.2f}' if target else '':>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
