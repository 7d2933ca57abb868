"""``make bench``: every scenario in one run, then the figures against the targets.

Processes: the fake upstream, the bare echo server and each policyd daemon run as their
own processes; the load generator is another (the machine has 2 cores: one for the
server under test, one for the load). Each run is bounded by ``--duration`` per phase
and ``--soak`` requests for the memory soak.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench.figures import Row, rows  # noqa: E402
from bench.scenarios import Scenario, scenarios  # noqa: E402
from policyd.cli import event_loop  # noqa: E402

ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
    "POLICYD_DISABLE_PLUGIN_AUTOLOAD": "1",
}


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[str]
    address: str
    rss_samples: list[float] = field(default_factory=list)

    def rss_mb(self) -> float:
        try:
            status = Path(f"/proc/{self.popen.pid}/status").read_text()
        except OSError:
            return float("nan")
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else float("nan")

    def cpu_s(self) -> float:
        """User + system CPU seconds the process has used (from /proc)."""
        try:
            fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()


SERVER_CPU, LOAD_CPU = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
"""Servers on core 0, the load generator on core 1 (when taskset exists and there are 2 cores)."""
if not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
    SERVER_CPU = LOAD_CPU = []


def start(
    name: str,
    cmd: list[str],
    ready: str,
    timeout_s: float = 30.0,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> Proc:
    """Start a process (pinned to the server core) and wait for its ``<ready> HOST:PORT`` line.

    ``python -m`` puts ``cwd`` first on ``sys.path``: to run another source tree, give it as ``cwd``.
    """
    cmd = [*SERVER_CPU, *cmd]
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env or ENV, cwd=cwd)
    deadline = time.monotonic() + timeout_s
    assert popen.stdout is not None
    while time.monotonic() < deadline:
        line = popen.stdout.readline()
        if not line:
            break
        match = re.search(rf"{ready} (\S+:\d+)", line)
        if match:
            return Proc(name, popen, match.group(1))
    popen.kill()
    raise RuntimeError(f"{name} did not start: {' '.join(cmd)}")


def loadgen(target: str, *args: str, timeout_s: float = 900.0) -> dict[str, Any]:
    cmd = [*LOAD_CPU, sys.executable, str(ROOT / "bench" / "loadgen.py"), "--target", target, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=timeout_s, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(target: str, args: argparse.Namespace, server: Proc, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Open loop at the fixed rate, then closed loop; the best of ``--repeat`` runs of each.

    Best-of (lowest p50, highest RPS) because other work on a shared machine only ever
    makes a run slower. The server's CPU time per request in the closed loop is the
    figure least disturbed by other load.
    """
    common = ["--warmup", str(args.warmup), *extra]
    opens, closeds = [], []
    for _ in range(args.repeat):
        opens.append(
            loadgen(target, "--mode", "open", "--rate", str(args.rate), "--duration", str(args.duration), *common)
        )
        cpu0 = server.cpu_s()
        closed = loadgen(
            target,
            "--mode",
            "closed",
            "--concurrency",
            str(args.concurrency),
            "--duration",
            str(args.duration),
            *common,
        )
        closed["server_cpu_us_per_req"] = round(
            (server.cpu_s() - cpu0) * 1e6 / max(1, closed["count"] + args.warmup), 1
        )
        closeds.append(closed)
    return {
        "open": min(opens, key=lambda r: r["p50_ms"]),
        "closed": max(closeds, key=lambda r: r["rps"]),
        "cpu_us_per_req": min(c["server_cpu_us_per_req"] for c in closeds),
    }


def soak(proc: Proc, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """RSS every 0.5 s over ``--soak`` requests, and the slowest ``fsync`` of a 4 KiB write in the
    daemon's data dir meanwhile: the ledger commits with ``synchronous = FULL``, and while a commit
    waits on the disk, requests' outcomes queue in memory (up to ``ledger.max_pending``).

    ``--soak-hold-ms`` makes such stalls on purpose (a diagnostic; the figure is measured without):
    every ``--soak-hold-every`` seconds the bench holds the ledger's write lock that long, so the
    daemon's next commit waits exactly as it waits on a slow ``fsync``, whatever the disk does."""
    stop = threading.Event()
    fsync_s: list[float] = []

    def sample() -> None:
        probe = data_dir / "bench-fsync-probe"
        with probe.open("wb") as f:
            while not stop.is_set():
                proc.rss_samples.append(proc.rss_mb())
                f.write(b"\0" * 4096)
                t0 = time.perf_counter()
                os.fsync(f.fileno())
                fsync_s.append(time.perf_counter() - t0)
                stop.wait(0.5)
        probe.unlink()

    def hold() -> None:
        while not stop.wait(args.soak_hold_every):
            conn = sqlite3.connect(data_dir / "ledger.sqlite3", timeout=30, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                time.sleep(args.soak_hold_ms / 1000)
                conn.execute("COMMIT")
            finally:
                conn.close()

    start_mb = proc.rss_mb()
    threads = [threading.Thread(target=sample, daemon=True)]
    if args.soak_hold_ms > 0:
        threads.append(threading.Thread(target=hold, daemon=True))
    for thread in threads:
        thread.start()
    try:
        result = loadgen(
            f"grpc://{proc.address}",
            "--mode", "closed", "--concurrency", str(args.concurrency), "--requests", str(args.soak), "--warmup", "0",
        )  # fmt: skip
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    end_mb = proc.rss_mb()
    peak = max([start_mb, end_mb, *proc.rss_samples])
    committed_mb = rss_after_ledger_commit(proc)
    return {
        **result,
        "rss_start_mb": round(start_mb, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_end_mb": round(end_mb, 1),
        "rss_growth_pct": round((end_mb - start_mb) / start_mb * 100, 2),
        "fsync_max_ms": round(max(fsync_s, default=0.0) * 1000, 1),
        "rss_committed_mb": round(committed_mb, 1),
        "ledger_held": f"{args.soak_hold_ms:g} ms every {args.soak_hold_every:g} s" if args.soak_hold_ms > 0 else "",
    }


def rss_after_ledger_commit(proc: Proc) -> float:
    """RSS once everything the soak queued for the ledger has committed (a GetStats commits the queue
    first): the end figure may fall in a disk stall, while outcomes not yet durable wait in memory."""
    import grpc

    from policyd.v1 import policyd_pb2, policyd_pb2_grpc

    with grpc.insecure_channel(proc.address) as channel:
        try:
            stub = policyd_pb2_grpc.PolicyServiceStub(channel)
            stub.GetStats(policyd_pb2.GetStatsRequest(window_seconds=1), timeout=60)
        except grpc.RpcError as exc:  # no ledger in this scenario: nothing queued for it either
            print(f"(f) soak: GetStats failed ({exc.code()}): RSS read without a ledger commit", flush=True)
    return proc.rss_mb()


def daemon(sc: Scenario, folder: Path) -> Proc:
    assert sc.config is not None
    path = folder / f"{sc.key}.yaml"
    path.write_text(sc.config, encoding="utf-8")
    cmd = [sys.executable, "-m", "policyd", "--log-level", "WARNING", "serve", "--config", str(path)]
    cmd += ["--listen", "127.0.0.1:0", "--data-dir", str(folder / f"data-{sc.key}")]
    return start(sc.key, cmd, "policyd listening on")


def run(args: argparse.Namespace) -> dict[str, Any]:
    procs: list[Proc] = []
    results: dict[str, Any] = {"scenarios": {}, "notes": {}, "load_before": os.getloadavg()[0]}
    try:
        upstream = start(
            "upstream",
            [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--latency-ms", str(args.upstream_latency_ms)],
            "fake upstream listening on",
        )
        procs.append(upstream)
        echo = start("echo", [sys.executable, str(ROOT / "bench" / "echo_server.py")], "echo listening on")
        procs.append(echo)
        results["scenarios"]["echo"] = measure(f"grpc://{echo.address}", args, echo)
        echo.stop()
        url = f"http://{upstream.address}"
        if wanted(args, "direct"):
            results["scenarios"]["direct"] = measure(f"{url}/v1/chat/completions", args, upstream)
        with tempfile.TemporaryDirectory(prefix="policyd-bench-") as tmp:
            for sc in scenarios(url):
                if sc.note:
                    results["notes"][sc.key] = sc.note
                if sc.config is None or not wanted(args, sc.key):
                    continue
                proc = daemon(sc, Path(tmp))
                procs.append(proc)
                results["scenarios"][sc.key] = measure(f"grpc://{proc.address}", args, proc, sc.loadgen_args)
                if sc.key == "passthrough" and args.soak > 0:
                    results["soak"] = soak(proc, args, Path(tmp) / f"data-{sc.key}")
                proc.stop()
    finally:
        for proc in procs:
            if proc.popen.poll() is None:
                proc.stop()
    results["load_after"] = os.getloadavg()[0]
    results["machine"] = machine()
    results["event_loop"] = event_loop.loop_factory()[0]  # the daemons' and the echo server's
    results["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["settings"] = {k: v for k, v in vars(args).items() if k != "out"}
    return results


def wanted(args: argparse.Namespace, key: str) -> bool:
    return (not args.only or key in args.only.split(",")) and key not in args.skip.split(",")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


MODULES: list[tuple[str, str]] = [
    # (key in results.json, bench module): each module measures with ``run(args) -> dict`` and
    # gives its summary rows with ``rows(results) -> list[Row]`` (the contract: bench/figures.py).
    # A bench module plugs into ``make bench`` with one line here.
    ("streaming", "bench.streaming_bench"),
    ("frontdoor", "bench.frontdoor_bench"),
    ("workers", "bench.workers_bench"),  # policyd serve --workers 2 against 1
    ("startup", "bench.startup_bench"),  # last: alone, after every other daemon has stopped
]

QUICK = {"duration": 1.0, "repeat": 1, "warmup": 50, "soak": 5_000, "rounds": 60, "c1_requests": 60, "startup_runs": 3}
"""``--quick``: a smoke-sized run (about a minute); flags given explicitly still win."""


def run_modules(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Each wanted bench module's figures under its key; its own table printed as it finishes."""
    for key, name in MODULES:
        if not wanted(args, key):
            continue
        module = importlib.import_module(name)
        try:
            results[key] = module.run(args)
        except Exception as exc:  # one part failing leaves the others' figures, and says why
            print(f"{key}: failed: {type(exc).__name__}: {exc}", flush=True)
            results[key] = {"error": f"{type(exc).__name__}: {exc}"}
        if hasattr(module, "render") and "error" not in results[key]:
            print(module.render(results[key]), flush=True)


def summary_rows(results: dict[str, Any]) -> list[Row]:
    """The closing table's rows: this runner's scenarios, then each bench module's, in MODULES' order."""
    out = rows(results)
    for key, name in MODULES:
        if key in results:
            out += importlib.import_module(name).rows(results[key])
        else:
            out.append(Row(f"{key} figures", None, 0.0, note=f"skipped ({name} did not run)"))
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per open-loop and closed-loop phase")
    p.add_argument("--rate", type=float, default=100.0, help="open-loop requests per second")
    p.add_argument("--concurrency", type=int, default=32, help="closed-loop workers")
    p.add_argument("--warmup", type=int, default=200, help="unmeasured requests before each phase")
    p.add_argument("--repeat", type=int, default=2, help="runs of each phase; the best is kept")
    p.add_argument("--soak", type=int, default=50_000, help="requests in the memory soak (0 skips it)")
    p.add_argument(
        "--soak-hold-ms",
        type=float,
        default=0.0,
        help="diagnostic: hold the ledger's write lock this long (< 10000, the daemon's busy timeout) during the soak",
    )
    p.add_argument("--soak-hold-every", type=float, default=5.0, help="seconds between two --soak-hold-ms holds")
    p.add_argument("--upstream-latency-ms", type=float, default=0.0, help="the fake upstream's added latency")
    p.add_argument("--only", default="", help="comma-separated scenarios and bench modules besides the echo baseline")
    p.add_argument("--skip", default="", help="comma-separated scenarios and bench modules not to run")
    p.add_argument("--quick", action="store_true", help="short phases and few requests: a smoke run of everything")
    p.add_argument("--out", type=Path, default=ROOT / "bench-out" / "results.json")
    for _, name in MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "add_arguments"):
            module.add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    from bench.figures import render, summary

    p = parser()
    args = p.parse_args(argv)
    if not 0 <= args.soak_hold_ms < 10_000 or args.soak_hold_every <= 0:
        p.error("--soak-hold-ms must be in [0, 10000) (the daemon's busy timeout) and --soak-hold-every > 0")
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)
    results = run(args)
    print(render(results), flush=True)
    run_modules(args, results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    load = os.getloadavg()
    print(f"\nsummary (load average {results['load_before']:.1f} at the start, {load[0]:.1f} now):")
    print(summary(summary_rows(results)))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
