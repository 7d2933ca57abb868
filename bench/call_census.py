"""Python calls per request through ``PolicyServicer.Complete``: an A/B figure that machine load does not move.

CPU per request on a shared 2-core machine moves by 20 % between runs of the same tree; the
number of Python function calls (and C calls made from Python) one request makes does not.
The daemon is built as ``policyd serve`` builds it, its servicer called in process as in
``bench/servicer_cpu.py`` (no grpc), on the hot-path scenarios' policy: the
``openai-compatible`` provider calling ``bench/fake_upstream.py`` over loopback (started
here), so the provider's client is counted too. ``default`` makes every prompt new (cache
and ledger on: each request misses, calls the upstream and stores the answer), ``nocache``
turns the plan's cache off, ``cache`` repeats one prompt (after the first, every request a
hit, replayed where the tree can). Counted with ``sys.setprofile`` on the loop thread: every
Python frame entered (``call``) and every builtin called (``c_call``), per request, with
the functions that make the most calls; background threads (cache and ledger writers) are
not counted.

    python bench/call_census.py --tree base=/tmp/base --tree new=. --top 15

Not part of ``make bench``; ``bench/cpu_ab.py`` measures the whole daemon's CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.scenarios import hotpath_scenarios  # noqa: E402

CHILD = r"""
import asyncio, collections, json, sys, time
from pathlib import Path
from policyd.daemon import DaemonOptions, build_daemon
from policyd.server.servicer import PolicyServicer
from policyd.v1 import policyd_pb2 as pb

config, data, count, unique, top = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])

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
    warm = 300
    bodies = [body(i) for i in range(warm + count)]
    for raw in bodies[:warm]:
        await servicer.Complete(pb.CompleteRequest.FromString(raw), context)
    calls, builtins = collections.Counter(), collections.Counter()

    def profile(frame, event, arg):
        if event == "call":
            code = frame.f_code
            calls[(code.co_filename, code.co_name)] += 1
        elif event == "c_call":
            builtins[getattr(arg, "__qualname__", repr(arg))] += 1

    replies = []
    sys.setprofile(profile)
    for raw in bodies[warm:]:
        replies.append(await servicer.Complete(pb.CompleteRequest.FromString(raw), context))
    sys.setprofile(None)
    await d.aclose()
    ok = (pb.OUTCOME_STATUS_ACCEPTED, pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED)
    statuses = [(pb.CompleteResponse.FromString(r) if isinstance(r, bytes) else r).status for r in replies]
    print(json.dumps({
        "calls": sum(calls.values()) / count,
        "c_calls": sum(builtins.values()) / count,
        "failed": sum(s not in ok for s in statuses),
        "top": [[f"{n} ({f})", c / count] for (f, n), c in calls.most_common(top)],
    }))

try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""

UNIQUE = {"default": True, "nocache": True, "cache": False}
"""Scenario → every prompt distinct. The policies are ``bench/scenarios.py``'s hot-path ones."""


def _env(tree: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "plugins")]),
        "POLICYD_DISABLE_PLUGIN_AUTOLOAD": "1",
    }


def census(tree: Path, scenario: str, upstream: str, count: int, top: int, tmp: Path) -> dict[str, object]:
    """One tree's calls per request in one scenario (a process of its own)."""
    policies = {key: text for key, text, _ in hotpath_scenarios(upstream)}
    folder = Path(tempfile.mkdtemp(dir=tmp))
    config = folder / "policy.yaml"
    config.write_text(policies[scenario], encoding="utf-8")
    args = [str(config), str(folder / "data"), str(count), "1" if UNIQUE[scenario] else "0", str(top)]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=_env(tree), cwd=tree, check=True
    )
    figures: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    if figures["failed"]:
        raise RuntimeError(f"{tree} {scenario}: {figures['failed']} requests did not succeed")
    return figures


def start_upstream() -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--latency-ms", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    assert proc.stdout is not None
    match = re.search(r"listening on (\S+:\d+)", proc.stdout.readline())
    if match is None:
        proc.kill()
        raise RuntimeError("the fake upstream did not start")
    return proc, f"http://{match.group(1)}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", action="append", default=[], help="NAME=PATH of a source tree (repeatable)")
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--only", default=",".join(UNIQUE))
    p.add_argument("--top", type=int, default=12, help="functions listed per tree and scenario, by calls")
    args = p.parse_args(argv)
    trees = [(n, Path(t).resolve()) for n, t in (s.split("=", 1) for s in args.tree or [f"this={ROOT}"])]
    upstream, url = start_upstream()
    try:
        with tempfile.TemporaryDirectory(prefix="policyd-call-census-") as tmp:
            for scenario in args.only.split(","):
                for name, tree in trees:
                    figures = census(tree, scenario, url, args.requests, args.top, Path(tmp))
                    print(
                        f"{scenario:8} {name:12} {figures['calls']:7.1f} Python calls "
                        f"{figures['c_calls']:7.1f} builtin calls per request"
                    )
                    for label, calls in figures["top"]:  # type: ignore[attr-defined]
                        print(f"    {calls:6.2f}  {label}")
    finally:
        upstream.kill()
        upstream.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
