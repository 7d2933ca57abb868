"""Exec → SERVING: how long ``policyd serve`` takes to be ready on the offline default.

    python bench/startup_bench.py [--runs 5] [--interval-ms 20] [--console-script] [--workers N]

Each run starts ``python -m policyd serve`` (or the ``policyd`` console script) with no
config file, a fresh data directory in a temp dir and a fixed free port on 127.0.0.1,
and polls grpc.health.v1 ``Check`` (service "") every ``--interval-ms`` from this process,
which has imported grpc and made its channel before the clock starts: the poller's own
import time is not counted. The clock runs from just before the exec to the first
SERVING answer; then one ``Complete`` checks the daemon answers, and SIGTERM stops it.
Without ``--workers`` the daemon runs its default number of workers (one per core it may use:
a supervisor and its workers); the CPU is counted per process, the exec'd one and its live
children (the workers: its own cutime/cstime only counts children it has reaped).

Then, in other child processes, the phases of start-up timed from inside: the serve path's
imports, ``build_daemon`` (plugins, config, cache, ledger, telemetry) and ``start_server``
until SERVING, and which heavy modules (aiohttp, the OTel SDK, jsonschema, redis, asyncpg,
the eval package, numpy) were loaded by then. ``--root`` runs another checkout (A/B).
The target is the issue's: ready in ≤ 0.5 s (median). The machine is shared, so the load
average is printed with the figures; compare medians of runs made side by side. On a busy
machine ``--instructions`` counts instead (valgrind) what ``--workers 1`` executes until its server
starts, what a group executes on its way to its first worker's server (the supervisor until it forks
that worker, then the worker) and the supervisor until its first worker starts: the same figures at
any load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from bench.figures import Row  # noqa: E402
from policyd.v1 import policyd_pb2, policyd_pb2_grpc  # noqa: E402

TARGET_S = 0.5
"""Issue #21: exec → SERVING ≤ 0.5 s, median of 5, health polled every 20 ms over gRPC."""

CHANNEL_OPTIONS = [
    # A refused connection must not put the channel into grpc's default 1 s reconnect backoff.
    ("grpc.initial_reconnect_backoff_ms", 5),
    ("grpc.min_reconnect_backoff_ms", 5),
    ("grpc.max_reconnect_backoff_ms", 5),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(port: int, data_dir: Path, console_script: bool) -> list[str]:
    exe = shutil.which("policyd", path=str(Path(sys.executable).parent)) if console_script else None
    if console_script and exe is None:
        raise SystemExit("no policyd console script next to this interpreter (pip install -e .)")
    head = [exe] if exe else [sys.executable, "-m", "policyd"]
    return [*head, "--log-level", "WARNING", "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir)]


def child_env(root: Path, pycache: Path | None) -> dict[str, str]:
    """The offline default as a user gets it: no OTEL_* exporter, no policy file, no POLICYD_* overrides
    (plugin autoload stays on: entry-point discovery is part of start-up). ``root``: the checkout to run.

    With ``pycache``, bytecode is cached outside the tree, as in an installed package (pip
    compiles at install; the image's ``PYTHONDONTWRITEBYTECODE`` then only stops new writes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "POLICYD_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(root / "plugins")])
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def cpu_s(pid: int, reaped: bool = True) -> float:
    """User + system CPU seconds the process has used, with (``reaped``) its children it has waited for
    (from /proc; NaN where there is none). Children still running are not in it: see :func:`tree_cpu_s`."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The live children of ``pid`` (every thread's list in /proc; empty where the kernel has none)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_cpu_s(pid: int) -> tuple[float, float]:
    """(CPU seconds of ``pid`` itself with the children it reaped, CPU seconds of its live descendants):
    a supervisor's workers are running when it serves, so its cutime/cstime does not count them yet."""
    own = cpu_s(pid)
    rest = 0.0
    pending = children(pid)
    while pending:
        child = pending.pop()
        rest += cpu_s(child)
        pending += children(child)
    return own, rest


def waited_s(pid: int) -> float:
    """Seconds ``pid``'s threads and its live descendants' spent runnable but waiting for a core (the
    second field of each task's /proc schedstat; 0 where the kernel has none): how much the machine's
    other load, and the group's own processes on too few cores, delayed start-up."""
    total_ns = 0
    pending = [pid]
    while pending:
        proc = pending.pop()
        try:
            tasks = list(Path(f"/proc/{proc}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                total_ns += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
        pending += children(proc)
    return total_ns / 1e9


class Run(NamedTuple):
    ready_s: float
    """Exec → the first SERVING health answer."""
    own_cpu_s: float
    """CPU the exec'd process (a group's supervisor) had used by then."""
    children_cpu_s: float
    """CPU its live children (a group's workers) had used by then."""
    answered_s: float
    """Exec → the first Complete, sent right after SERVING, answered."""
    waited_s: float
    """Time its processes (a group's supervisor and workers) had waited for a core by SERVING."""


def one_run(interval_s: float, console_script: bool, env: dict[str, str], timeout_s: float = 30.0) -> Run:
    """Seconds from exec to the first SERVING health answer, and the CPU seconds the process (with a group:
    the supervisor) and its live children (the workers) had used by then (the figures other load on a
    shared machine disturbs least); then one Complete at once (timed: what SERVING left to do, such as
    the cache's shards still opening, it waits for), then SIGTERM."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="policyd-startup-") as tmp:
        cmd = command(port, Path(tmp) / "data", console_script)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="")
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            ready = poll(health, request, proc, t0, interval_s, timeout_s)
            own, workers = tree_cpu_s(proc.pid)
            waited = waited_s(proc.pid)
            check_complete(channel)
            return Run(ready, own, workers, time.perf_counter() - t0, waited)
        finally:
            channel.close()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def poll(
    health: health_pb2_grpc.HealthStub,
    request: health_pb2.HealthCheckRequest,
    proc: subprocess.Popen[bytes],
    t0: float,
    interval_s: float,
    timeout_s: float,
) -> float:
    while time.perf_counter() - t0 < timeout_s:
        try:
            reply = health.Check(request, timeout=interval_s)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return time.perf_counter() - t0
        except grpc.RpcError:
            pass
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"policyd exited with {proc.returncode} before SERVING:\n{err[-2000:]}")
        time.sleep(interval_s)
    raise RuntimeError(f"policyd not SERVING after {timeout_s} s")


def check_complete(channel: grpc.Channel) -> None:
    """SERVING must mean ready: the first Complete on the offline default answers."""
    stub = policyd_pb2_grpc.PolicyServiceStub(channel)
    reply = stub.Complete(
        policyd_pb2.CompleteRequest(messages=[policyd_pb2.Message(role=policyd_pb2.ROLE_USER, content="hello")]),
        timeout=10,
    )
    if not reply.output.content:
        raise RuntimeError(f"the first Complete after SERVING returned no output: {reply}")


PHASES = """
import json, sys, tempfile, time
from pathlib import Path
t0 = time.process_time()
from policyd.cli import main
# What `policyd serve` imports before it runs (older checkouts: every subcommand, the collector on).
main.command_parser(["serve"]) if hasattr(main, "command_parser") else main.build_parser()
from policyd.daemon import DaemonOptions, build_daemon
from policyd.server.app import start_server
from policyd.cli import event_loop
t1 = time.process_time()
daemon = build_daemon(DaemonOptions(data_dir=Path(tempfile.mkdtemp()) / "data"))
t2 = time.process_time()
marks = []
async def up():
    running = await start_server(daemon, "127.0.0.1:0")
    marks.append(time.process_time())
    await running.shutdown(0)
    await daemon.aclose()
event_loop.run(up(), event_loop.loop_factory()[1])
t3 = marks[0]
heavy = ("aiohttp", "opentelemetry.sdk", "jsonschema", "redis", "asyncpg", "policyd.eval", "numpy")
print(json.dumps({"import_s": t1 - t0, "build_s": t2 - t1, "start_s": t3 - t2,
                  "loaded": sorted(h for h in heavy if h in sys.modules)}))
"""
"""Times the phases of start-up in one process, in CPU seconds (``time.process_time``: other load on the
machine barely moves it): the serve path's imports, ``build_daemon`` (plugins, config, cache, ledger,
telemetry) and ``start_server`` until SERVING."""


def phases(env: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="policyd-startup-") as tmp:  # not the repo: '' leads sys.path
        out = subprocess.run(
            [sys.executable, "-c", PHASES], env=env, capture_output=True, text=True, check=True, cwd=tmp
        )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


WORKER_UNTIL_SERVE = """
import os
from policyd.cli import event_loop
def stop(serving, factory):  # where `policyd serve --workers 1` starts its server: the rest is the same
    serving.close()
    print("server would start", flush=True)
    os._exit(0)
event_loop.run = stop
from policyd.cli.main import main
main(["--log-level", "WARNING", "serve", "--workers", "1", "--listen", "127.0.0.1:0",
      "--data-dir", os.path.join(os.getcwd(), "data")])
"""
"""A worker's (or ``--workers 1``'s) start-up: exec to the moment its server would start."""

SUPERVISOR_UNTIL_SPAWN = """
import os, subprocess
def stop(*args, **kwargs):  # the supervisor's first fork (or Popen) is its first worker's start
    print("first worker would start", flush=True)
    os._exit(0)
subprocess.Popen = stop
os.fork = stop
from policyd.cli.main import main
main(["--log-level", "WARNING", "serve", "--workers", "2", "--listen", "127.0.0.1:0",
      "--data-dir", os.path.join(os.getcwd(), "data")])
"""
"""A group's supervisor: exec to the start of its first worker (the part of the group's start-up it delays)."""

GROUP_UNTIL_SERVE = """
import os
from policyd.cli import event_loop
from policyd.workers import spawn
if not hasattr(spawn, "fork_worker"):  # a checkout whose workers are exec'd: supervisor + worker instead
    print("no forked workers", flush=True)
    os._exit(3)
def stop(serving, factory):  # in the forked worker (its stdout is the supervisor's stderr), where its server starts
    serving.close()
    os._exit(0)
event_loop.run = stop
def first_only(plan):  # the supervisor forks its first worker, waits for it, and stops
    _, status = os.waitpid(spawn.fork_worker(plan, 0).pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        print("first worker's server would start", flush=True)
    os._exit(os.waitstatus_to_exitcode(status))
spawn.start_group = first_only
from policyd.cli.main import main
main(["--log-level", "WARNING", "serve", "--workers", "2", "--listen", "127.0.0.1:0",
      "--data-dir", os.path.join(os.getcwd(), "data")])
"""
"""A group's way to its first SERVING: exec, the supervisor until it forks its first worker, and that worker
until its server would start (valgrind follows the fork; the child's count includes what it inherited)."""


VALGRIND = ("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null")


def instructions(env: dict[str, str], script: str) -> int | None:
    """Instructions ``python -c script`` executes in a fresh temporary directory (valgrind's cachegrind
    without its cache model): the same count however busy the machine is, unlike any time. With a fork,
    the largest process's count (a forked child's includes what it inherited); None when the script
    exits 3 (it does not apply to the checkout)."""
    with tempfile.TemporaryDirectory(prefix="policyd-startup-") as tmp:
        out = subprocess.run(
            [*VALGRIND, sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp,
            check=False,
        )
    if out.returncode == 3:
        return None
    return parse_instructions(out.stderr)


def parse_instructions(report: str) -> int:
    """The ``I refs`` total of a cachegrind report (``==12== I   refs:      1,670,404,451``); the largest
    when several processes report (a forked child's count starts from its parent's at the fork)."""
    counts = []
    for line in report.splitlines():
        head, _, count = line.partition("refs:")
        if count and head.rstrip().endswith(" I"):
            counts.append(int(count.strip().replace(",", "")))
    if not counts:
        raise RuntimeError(f"no instruction count from valgrind:\n{report[-2000:]}")
    return max(counts)


COUNTED = {
    "worker": WORKER_UNTIL_SERVE,
    "supervisor": SUPERVISOR_UNTIL_SPAWN,
    "group": GROUP_UNTIL_SERVE,
    "bare_python": "pass",
}
"""What ``--instructions`` counts. ``group``: exec → the first worker's server would start; where the workers
are exec'd (an older checkout), the supervisor's count until its first worker plus an exec'd worker's."""


def count_instructions(root: Path) -> dict[str, Any]:
    """Instruction counts (:data:`COUNTED`) of ``root``'s start-ups, and of a bare interpreter."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind on PATH")
    with tempfile.TemporaryDirectory(prefix="policyd-pycache-") as pycache:
        env = child_env(root, Path(pycache))
        for script in COUNTED.values():  # unmeasured: writes the bytecode cache of every module they import
            with tempfile.TemporaryDirectory(prefix="policyd-startup-") as tmp:
                subprocess.run([sys.executable, "-c", script], env=env, check=False, capture_output=True, cwd=tmp)
        counts = {name: instructions(env, script) for name, script in COUNTED.items()}
    worker, supervisor = counts["worker"], counts["supervisor"]
    assert worker is not None and supervisor is not None
    group = counts.pop("group")
    figures: dict[str, Any] = {f"{name}_minstr": round((count or 0) / 1e6, 1) for name, count in counts.items()}
    figures["group_minstr"] = round((group if group is not None else supervisor + worker) / 1e6, 1)
    figures["group_workers"] = "forked" if group is not None else "exec'd"
    return figures


def measure(
    runs: int = 5,
    interval_ms: float = 20.0,
    console_script: bool = False,
    root: Path = ROOT,
    bytecode_cache: bool = True,
    workers: int | None = None,
) -> dict[str, Any]:
    """The figures ``bench/run.py`` (and ``make bench``) read: seconds, with the target. ``workers``: set
    ``POLICYD_WORKERS`` (None: the default, one worker per core this process may use)."""
    with tempfile.TemporaryDirectory(prefix="policyd-pycache-") as pycache:
        env = child_env(root, Path(pycache) if bytecode_cache else None)
        if workers is not None:
            env["POLICYD_WORKERS"] = str(workers)
        load = os.getloadavg()
        if bytecode_cache:
            one_run(interval_ms / 1000, console_script, env)  # unmeasured: writes the bytecode cache
        samples = [one_run(interval_ms / 1000, console_script, env) for _ in range(runs)]
        parts = [phases(env) for _ in range(runs)]
    times = [run.ready_s for run in samples]
    return {
        "runs": runs,
        "interval_ms": interval_ms,
        "launcher": "console script" if console_script else "python -m policyd",
        "workers": "default" if workers is None else workers,
        "bytecode": "cached bytecode" if bytecode_cache else "sources compiled at each start",
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "samples_s": [round(t, 3) for t in times],
        "answered_median_s": round(statistics.median(run.answered_s for run in samples), 3),
        "cpu_median_s": round(statistics.median(run.own_cpu_s + run.children_cpu_s for run in samples), 3),
        "cpu_main_median_s": round(statistics.median(run.own_cpu_s for run in samples), 3),
        "cpu_children_median_s": round(statistics.median(run.children_cpu_s for run in samples), 3),
        "waited_median_s": round(statistics.median(run.waited_s for run in samples), 3),
        "import_median_s": round(statistics.median(p["import_s"] for p in parts), 3),
        "build_median_s": round(statistics.median(p["build_s"] for p in parts), 3),
        "start_median_s": round(statistics.median(p["start_s"] for p in parts), 3),
        "heavy_loaded": parts[0]["loaded"],
        "target_s": TARGET_S,
        "load_avg_1m": [round(load[0], 2), round(os.getloadavg()[0], 2)],
    }


def render(figures: dict[str, Any]) -> str:
    ok = "meets" if figures["median_s"] <= figures["target_s"] else "MISSES"
    load = figures["load_avg_1m"]
    return "\n".join(
        (
            f"exec → SERVING ({figures['launcher']}, offline default, workers {figures['workers']}, "
            f"{figures['bytecode']}, health every "
            f"{figures['interval_ms']:g} ms): median {figures['median_s']:.3f} s (min {figures['min_s']:.3f}, "
            f"max {figures['max_s']:.3f}, n={figures['runs']}); target ≤ {figures['target_s']:.1f} s: {ok}",
            f"  exec → the first Complete (sent at SERVING) answered: median {figures['answered_median_s']:.3f} s",
            f"  CPU used until SERVING (less disturbed by load), medians: {figures['cpu_median_s']:.3f} s in all, "
            f"{figures['cpu_main_median_s']:.3f} s the exec'd process (a group's supervisor), "
            f"{figures['cpu_children_median_s']:.3f} s its live children (the workers); waited for a core "
            f"{figures['waited_median_s']:.3f} s (all their threads)",
            f"  in-process CPU medians: imports {figures['import_median_s']:.3f} s, build_daemon "
            f"{figures['build_median_s']:.3f} s, start_server {figures['start_median_s']:.3f} s; "
            f"heavy modules loaded: {', '.join(figures['heavy_loaded']) or 'none'}; load avg {load[0]} → {load[1]}",
        )
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``make bench``'s flag for this module (the bench-module contract: bench/figures.py)."""
    p.add_argument("--startup-runs", type=int, default=5, help="daemons started for exec → SERVING (0 skips)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run by ``bench/run.py`` last, alone: every other daemon has stopped."""
    if args.startup_runs <= 0:
        return {"error": "skipped (--startup-runs 0)"}
    return measure(runs=args.startup_runs)  # the runner prints ``render`` of it


def rows(results: dict[str, Any]) -> list[Row]:
    why = f"start-up bench: {results['error']}" if "error" in results else ""
    note = (
        ""
        if why
        else f"CPU until SERVING {results['cpu_median_s']:.2f} s (workers {results['cpu_children_median_s']:.2f} s); "
        f"load {results['load_avg_1m'][0]}"
    )
    return [Row("exec → SERVING, offline default", results.get("median_s"), TARGET_S, "s", "<=", why or note)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="daemons started (the median is reported)")
    p.add_argument("--interval-ms", type=float, default=20.0, help="health poll interval")
    p.add_argument("--console-script", action="store_true", help="exec the policyd console script, not python -m")
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    p.add_argument(
        "--workers", type=int, default=None, help="POLICYD_WORKERS for the daemon (default: unset, one per core)"
    )
    p.add_argument(
        "--root", type=Path, default=ROOT, help="the checkout to start (e.g. `git archive main` unpacked: A/B runs)"
    )
    p.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="compile every source at each start (a checkout under PYTHONDONTWRITEBYTECODE=1) instead of "
        "caching bytecode in a temp dir as an installed package has it",
    )
    p.add_argument(
        "--instructions",
        action="store_true",
        help="instead: count the instructions (valgrind) of a worker's start-up until its server starts, of a "
        "group's supervisor until its first worker starts, and of a bare interpreter; the same however busy "
        "the machine (about 20-60 s)",
    )
    args = p.parse_args(argv)
    if args.instructions:
        counts = count_instructions(args.root.resolve())
        print(
            f"instructions (millions), {args.root}: `--workers 1` until its server starts "
            f"{counts['worker_minstr']:,.1f}; a group until its first worker's server starts "
            f"{counts['group_minstr']:,.1f} ({counts['group_workers']} workers), of which the supervisor "
            f"until its first worker starts {counts['supervisor_minstr']:,.1f}; "
            f"python -c pass {counts['bare_python_minstr']:,.1f}"
        )
        if args.json:
            print(json.dumps(counts))
        return 0
    figures = measure(
        args.runs, args.interval_ms, args.console_script, args.root.resolve(), not args.no_bytecode_cache, args.workers
    )
    print(render(figures))
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
