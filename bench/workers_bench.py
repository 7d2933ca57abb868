"""``policyd serve --workers N``: the scaling figure and the figures behind the group's design.

1. **Scaling**: req/s (and the daemon's CPU per request, supervisor and workers together, the
   figure least disturbed by other load) of ``--workers 2`` against ``--workers 1``, the same closed-loop load
   generator (bench/loadgen.py, several connections: the kernel spreads connections, not
   requests) on the passthrough policy to bench/fake_upstream.py. Nothing is pinned: on a
   2-core box the load generator shares the cores with the workers (target >= 1.3x; where it
   has cores of its own, >= 0.9 N x). Runs alternate N=1 / N=2 and the median of each is
   compared; the load average is printed with them (the machine may be shared).
2. **Ledger**: records/s and CPU per record of the two designs, per-worker batched writers on
   the one WAL file (what policyd does) against one writer process fed by the workers over a
   Unix socket (records pickled).
3. **Group calls**: the cost of one rate-limit draw and one budget reserve + settle through the
   supervisor (both ends in one process: the sum of the worker's and the supervisor's CPU).

``python bench/workers_bench.py`` prints the figures with their targets; ``run()`` returns them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench.figures import Row  # noqa: E402
from bench.scenarios import scenarios  # noqa: E402

ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
    "POLICYD_DISABLE_PLUGIN_AUTOLOAD": "1",
}
TARGET_RATIO_2_CORES = 1.3


# ---------------------------------------------------------------- processes


def _start(
    cmd: list[str], ready: str, timeout_s: float = 60.0, stderr: Path | None = None
) -> tuple[subprocess.Popen[str], str]:
    """Start ``cmd`` and wait for its ``<ready> HOST:PORT`` line; ``stderr``: a file that keeps its log."""
    err = subprocess.DEVNULL if stderr is None else stderr.open("ab")
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=ENV, cwd=ROOT)
    if stderr is not None:
        err.close()  # type: ignore[union-attr]
    assert popen.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = popen.stdout.readline()
        if not line:
            break
        match = re.search(rf"{ready} (\S+:\d+)", line)
        if match:
            return popen, match.group(1)
    popen.kill()
    raise RuntimeError(f"did not start: {' '.join(cmd)}")


def _stop(popen: subprocess.Popen[str]) -> None:
    popen.terminate()
    try:
        popen.wait(timeout=30)
    except subprocess.TimeoutExpired:
        popen.kill()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children (a supervisor and its workers)."""
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def go_loadgen(folder: Path) -> Path | None:
    """``clients/go/cmd/policyd-load`` built into ``folder``; None without a Go toolchain or when it fails
    to build (the Python load generator is used then). Go's costs the shared cores a fraction of the CPU
    per request that Python's does, leaving more of the machine to the workers measured."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        return None
    binary = folder / "policyd-load"
    build = subprocess.run(
        [go, "build", "-o", str(binary), "./cmd/policyd-load"], cwd=ROOT / "clients" / "go", capture_output=True
    )
    return binary if build.returncode == 0 else None


def _loadgen(address: str, args: argparse.Namespace) -> dict[str, Any]:
    if args.go_loadgen is not None:
        cmd = [str(args.go_loadgen), "-addr", address, "-concurrency", str(args.concurrency)]
        cmd += ["-connections", str(args.connections), "-duration", f"{args.duration}s", "-warmup", str(args.warmup)]
    else:
        cmd = [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--target", f"grpc://{address}", "--mode", "closed"]
        cmd += ["--concurrency", str(args.concurrency), "--connections", str(args.connections)]
        cmd += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _python_run(config: Path, data_dir: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """One closed-loop run with the Python load generator: req/s and the daemon's CPU per request."""
    cmd = [sys.executable, "-m", "policyd", "--log-level", "WARNING", "serve", "--config", str(config)]
    cmd += ["--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--workers", str(n)]
    daemon, address = _start(cmd, "policyd listening on")
    try:
        load_avg = os.getloadavg()[0]
        cpu0 = _cpu_s(daemon.pid)
        result = _loadgen(address, args)
        served = result["count"] + result["errors"] + args.warmup
        daemon_us = round((_cpu_s(daemon.pid) - cpu0) * 1e6 / served, 1)
    finally:
        _stop(daemon)
    return {"rps": result["rps"], "daemon_cpu_us": daemon_us, "load_avg": round(load_avg, 2)}


def _go_run(config: Path, data_dir: Path, n: int, args: argparse.Namespace, upstream: int, log: Path) -> dict[str, Any]:
    """One closed-loop run with the Go load generator: req/s, every process's CPU per request over the
    measured phase (bench/workers_cpu.py), and the requests each worker answered."""
    from bench.workers_cpu import one_run

    load = [str(args.go_loadgen), "-concurrency", str(args.concurrency), "-connections", str(args.connections)]
    load += ["-duration", f"{args.duration}s", "-warmup", str(args.warmup)] + (
        ["-raw"] if args.go_client == "raw" else []
    )
    out = one_run(config, data_dir, n, load, upstream, log)
    cpu = out["cpu_us_per_req"]
    out["daemon_cpu_us"] = round(sum(v for k, v in cpu.items() if "." not in k and k not in ("upstream", "loadgen")), 1)
    return out


def scaling(args: argparse.Namespace) -> dict[str, Any]:
    """Median req/s of N=1 and N=2, interleaved runs; the ratio, the CPU per request of every process
    (with the Go load generator) and the load averages seen."""
    upstream, upstream_address = _start(
        [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--latency-ms", "0"], "fake upstream listening on"
    )
    passthrough = next(sc for sc in scenarios(f"http://{upstream_address}") if sc.key == "passthrough")
    assert passthrough.config is not None
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    try:
        with tempfile.TemporaryDirectory(prefix="policyd-workers-bench-") as tmp:
            args.go_loadgen = go_loadgen(Path(tmp)) if args.loadgen == "go" else None
            config = Path(tmp) / "passthrough.yaml"
            config.write_text(passthrough.config, encoding="utf-8")
            for r in range(args.repeat):
                for n in (1, 2):
                    data = Path(tmp) / f"data-{n}"
                    if args.go_loadgen is None:
                        runs[n].append(_python_run(config, data, n, args))
                    else:
                        runs[n].append(_go_run(config, data, n, args, upstream.pid, Path(tmp) / f"{n}-{r}.log"))
    finally:
        _stop(upstream)
    rps = {n: [round(x["rps"]) for x in runs[n]] for n in runs}
    one, two = statistics.median(rps[1]), statistics.median(rps[2])
    out: dict[str, Any] = {
        "rps_1_worker": rps[1],
        "rps_2_workers": rps[2],
        "median_1": one,
        "median_2": two,
        "cpu_us_per_req_1": [x["daemon_cpu_us"] for x in runs[1]],
        "cpu_us_per_req_2": [x["daemon_cpu_us"] for x in runs[2]],
        "ratio": round(two / one, 2) if one else float("nan"),
        "target": TARGET_RATIO_2_CORES,
        "load_avg_1min": [x["load_avg"] for n in (1, 2) for x in runs[n]],
        "cores": len(os.sched_getaffinity(0)),
        "connections": args.connections,
        "loadgen": f"go (clients/go/cmd/policyd-load, {args.go_client} client)"
        if args.go_loadgen is not None
        else "python (bench/loadgen.py)",
        "concurrency": args.concurrency,
    }
    if args.go_loadgen is not None:
        out["processes"] = {n: _process_medians(runs[n]) for n in (1, 2)}
        out["ceiling"] = ceiling(out["processes"], out["cores"])
        out["requests_per_worker"] = [list(w["requests"] for w in x["per_worker"].values()) for x in runs[2]]
        out["connections_per_worker"] = [list(w["connections"] for w in x["per_worker"].values()) for x in runs[2]]
    return out


def _process_medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Median CPU us per request of each process role: supervisor, workers (all), their event loops,
    the fake upstream, the load generator."""

    def part(run: dict[str, Any], pick: str) -> float:
        cpu = run["cpu_us_per_req"]
        if pick == "workers":
            return float(sum(v for k, v in cpu.items() if k.startswith("worker") and "." not in k))
        if pick == "loops":
            return float(sum(v for k, v in cpu.items() if k.endswith(".loop")))
        return float(cpu.get(pick, 0.0))

    picks = ("supervisor", "workers", "loops", "upstream", "loadgen")
    medians = {p: round(statistics.median(part(r, p) for r in runs), 1) for p in picks}
    medians["all"] = round(sum(medians[p] for p in picks if p != "loops"), 1)
    return medians


# ---------------------------------------------------------------- ledger designs


def _record(i: int, tag: str) -> Any:
    """A finished one-attempt request, as the ledger's writer receives it."""
    from policyd.ledger.records import Finished
    from policyd.types import (
        Attempt,
        AttemptRole,
        Effort,
        Explanation,
        Message,
        Outcome,
        OutcomeStatus,
        Request,
        Role,
    )

    attempt = Attempt(
        index=0,
        role=AttemptRole.DRAFT,
        model="bench-model",
        provider="fake",
        effort=Effort.OFF,
        input_tokens=20,
        output_tokens=5,
        cost_usd=0.00001,
        latency_ms=0.8,
    )
    outcome = Outcome(
        request_id=f"{tag}-{i}",
        status=OutcomeStatus.ACCEPTED_UNVALIDATED,
        output=Message(role=Role.ASSISTANT, content="42"),
        attempts=(attempt,),
        explanation=Explanation(policy="default", rule="bench", strategy="single", reason="", policy_version="bench"),
        total_cost_usd=0.00001,
        decision_id=f"d-{tag}-{i}",
        tenant="acme",
        latency_ms=0.8,
    )
    request = Request(request_id=f"{tag}-{i}", messages=(Message(role=Role.USER, content="q"),), tenant="acme")
    return Finished(request, outcome, time.time())


def _writer(path: str, tag: str, count: int, out: Any) -> None:
    """One worker's own batched writer on the shared WAL file (policyd's design)."""
    from policyd.ledger.writer import LedgerWriter

    records = [_record(i, tag) for i in range(count)]
    writer = LedgerWriter(Path(path), flush_interval_s=0.05, max_batch=500, max_pending=10_000_000)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for record in records:
        writer.enqueue(record)
    writer.close()  # commits what is queued
    out.put({"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0, "count": count})


def _feeder(sock: socket.socket, others: list[socket.socket], tag: str, count: int, out: Any) -> None:
    """A worker feeding the one writer process: each record serialised and sent over a Unix socket."""
    import pickle

    for other in others:  # inherited by fork: the writer's ends, and the other feeders'
        other.close()

    records = [_record(i, tag) for i in range(count)]
    cpu0, t0 = time.process_time(), time.perf_counter()
    with sock.makefile("wb", buffering=64 * 1024) as stream:
        for record in records:
            pickle.dump(record, stream, protocol=pickle.HIGHEST_PROTOCOL)
    sock.close()
    out.put({"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0, "count": count})


def _sink(path: str, socks: list[socket.socket], others: list[socket.socket], out: Any) -> None:
    """The one writer process: reads every feeder's records, commits them in batches."""
    import threading

    for other in others:  # the feeders' ends, inherited by fork: closed, so each read ends at its feeder's EOF
        other.close()

    import pickle

    from policyd.ledger.writer import LedgerWriter

    writer = LedgerWriter(Path(path), flush_interval_s=0.05, max_batch=500, max_pending=10_000_000)
    cpu0, t0 = time.process_time(), time.perf_counter()

    def read(sock: socket.socket) -> None:
        with sock.makefile("rb") as stream:
            while True:
                try:
                    writer.enqueue(pickle.load(stream))
                except EOFError:
                    return

    threads = [threading.Thread(target=read, args=(s,)) for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    out.put({"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0})


def ledger_designs(records: int = 20_000, workers: int = 2) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="policyd-ledger-designs-") as tmp:
        out = ctx.Queue()
        path = str(Path(tmp) / "per-worker.sqlite3")
        procs = [ctx.Process(target=_writer, args=(path, f"w{k}", records, out)) for k in range(workers)]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        parts = [out.get() for _ in procs]
        wall = time.perf_counter() - t0
        for p in procs:
            p.join()
        total = records * workers
        results["per_worker_writers"] = {
            "records_per_s": round(total / wall),
            "worker_cpu_us_per_record": round(sum(x["cpu_s"] for x in parts) / total * 1e6, 1),
            "writer_process_cpu_us_per_record": 0.0,
        }
        path = str(Path(tmp) / "one-writer.sqlite3")
        pairs = [socket.socketpair() for _ in range(workers)]
        ends = [s for pair in pairs for s in pair]
        sink = ctx.Process(target=_sink, args=(path, [b for _, b in pairs], [a for a, _ in pairs], out))
        feeders = [
            ctx.Process(target=_feeder, args=(a, [s for s in ends if s is not a], f"f{k}", records, out))
            for k, (a, _) in enumerate(pairs)
        ]
        t0 = time.perf_counter()
        sink.start()
        for p in feeders:
            p.start()
        for a, b in pairs:
            a.close()
            b.close()
        parts = [out.get() for _ in range(workers + 1)]
        wall = time.perf_counter() - t0
        for p in [sink, *feeders]:
            p.join()
        sink_part = next(x for x in parts if "count" not in x)
        fed = [x for x in parts if "count" in x]
        results["one_writer_process"] = {
            "records_per_s": round(total / wall),
            "worker_cpu_us_per_record": round(sum(x["cpu_s"] for x in fed) / total * 1e6, 1),
            "writer_process_cpu_us_per_record": round(sink_part["cpu_s"] / total * 1e6, 1),
        }
    return results


# ---------------------------------------------------------------- group calls


async def _group_calls(n: int) -> dict[str, float]:
    from policyd.workers.peer import Peer
    from policyd.workers.state import GroupState

    state = GroupState()
    a, b = socket.socketpair()
    supervisor = await Peer.open(a, state.handler(0))
    worker = await Peer.open(b, lambda op, msg: None)
    state.attach(0, supervisor)
    tasks = [asyncio.create_task(supervisor.run()), asyncio.create_task(worker.run())]
    line = [["budget-line", 1e9, time.time() + 86400]]
    await worker.call("reserve", lines=line, usd=0.001, seeds=[0.0])
    cpu0 = time.process_time()
    for _ in range(n):
        await worker.call("rate", tenant="acme", rpm=10**9, tpm=None, estimate=20)
    rate_us = (time.process_time() - cpu0) / n * 1e6
    cpu0 = time.process_time()
    for _ in range(n):
        await worker.call("reserve", lines=line, usd=0.001)
        worker.notify("settle", keys=["budget-line"], reserved=0.001, spent=0.0005)
    budget_us = (time.process_time() - cpu0) / n * 1e6
    await worker.aclose()
    await supervisor.aclose()
    for t in tasks:
        t.cancel()
    return {"rate_limit_draw_us": round(rate_us, 1), "budget_reserve_and_settle_us": round(budget_us, 1)}


def group_calls(n: int = 20_000) -> dict[str, float]:
    return asyncio.run(_group_calls(n))


# ---------------------------------------------------------------- report


def run(runner_args: argparse.Namespace | None = None) -> dict[str, Any]:
    """``make bench``'s entry (the bench-module contract: bench/figures.py): this module's own
    defaults, with the runner's phase length."""
    return measure_all(parse([] if runner_args is None else ["--duration", str(runner_args.duration)]))


def measure_all(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"load_avg_before": round(os.getloadavg()[0], 2)}
    results["group_calls"] = group_calls()
    results["ledger"] = ledger_designs(args.ledger_records)
    results["scaling"] = scaling(args)
    results["load_avg_after"] = round(os.getloadavg()[0], 2)
    return results


def rows(results: dict[str, Any]) -> list[Row]:
    if "error" in results:
        return [Row("req/s, 2 workers / 1 worker", None, TARGET_RATIO_2_CORES, "x", ">=", results["error"])]
    s = results["scaling"]
    note = f"{s['median_1']:.0f} -> {s['median_2']:.0f} req/s; load {s['load_avg_1min']}"
    return [Row("req/s, 2 workers / 1 worker", s["ratio"], TARGET_RATIO_2_CORES, "x", ">=", note)]


def render(results: dict[str, Any]) -> str:
    s, led, calls = results["scaling"], results["ledger"], results["group_calls"]
    per, one = led["per_worker_writers"], led["one_writer_process"]
    lines = [
        f"workers: {s['cores']} cores, closed loop c={s['concurrency']} over {s['connections']} connections "
        f"({s.get('loadgen', 'python')} load generator), "
        f"load average {s['load_avg_1min']} (1 min; the machine may be shared)",
        f"  req/s  1 worker  {s['rps_1_worker']} -> median {s['median_1']}",
        f"  req/s  2 workers {s['rps_2_workers']} -> median {s['median_2']}",
        f"  2 workers / 1 worker = {s['ratio']}x   (target >= {s['target']}x on 2 shared cores)",
        f"  CPU us per request (daemon and workers): 1 worker {s['cpu_us_per_req_1']}, "
        f"2 workers {s['cpu_us_per_req_2']}",
        *_process_lines(s),
        "ledger designs (2 writers, records/s | worker CPU us/record | writer process CPU us/record):",
        f"  per-worker batched writers, one WAL file: {per['records_per_s']} | {per['worker_cpu_us_per_record']} | -",
        f"  one writer process fed over a socket:     {one['records_per_s']} | "
        f"{one['worker_cpu_us_per_record']} | {one['writer_process_cpu_us_per_record']}",
        f"group calls through the supervisor: rate-limit draw {calls['rate_limit_draw_us']} us, "
        f"budget reserve + settle {calls['budget_reserve_and_settle_us']} us (worker + supervisor CPU)",
    ]
    return "\n".join(lines)


def _process_lines(s: dict[str, Any]) -> list[str]:
    if "processes" not in s:
        return []
    lines = ["  CPU us per request, medians (supervisor | workers (their event loops) | upstream | loadgen | all):"]
    for n, p in s["processes"].items():
        lines.append(
            f"    {n} worker(s): {p['supervisor']} | {p['workers']} ({p['loops']}) | {p['upstream']} | "
            f"{p['loadgen']} | {p['all']}"
        )
    lines.append(
        f"  2 workers: requests per worker {s['requests_per_worker']}, connections {s['connections_per_worker']}"
    )
    c = s["ceiling"]
    lines.append(
        f"  CPU-bound ceiling on {s['cores']} free cores (an estimate, not the figure): 1 worker <= {c['rps_1']} req/s "
        f"(its event loop), 2 workers <= {c['rps_2']} req/s -> {c['ratio']}x"
    )
    return lines


def ceiling(processes: dict[int, dict[str, float]], cores: int) -> dict[str, float]:
    """What the CPU per request allows on ``cores`` idle cores: one worker is bound by its event loop (one
    thread) or by all the processes' CPU, whichever is lower; two by all the processes' CPU."""
    one, two = processes[1], processes[2]
    rps_1 = min(1e6 / one["loops"], cores * 1e6 / one["all"]) if one["loops"] and one["all"] else float("nan")
    rps_2 = cores * 1e6 / two["all"] if two["all"] else float("nan")
    return {"rps_1": round(rps_1), "rps_2": round(rps_2), "ratio": round(rps_2 / rps_1, 2)}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=8.0, help="seconds per closed-loop run")
    p.add_argument("--repeat", type=int, default=3, help="interleaved runs of N=1 and N=2; medians are compared")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument(
        "--connections",
        type=int,
        default=16,
        help="the load generator's TCP connections (SO_REUSEPORT spreads connections: 8 per worker at N=2)",
    )
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument(
        "--loadgen", choices=["go", "python"], default="go", help="load generator (go falls back to python without Go)"
    )
    p.add_argument(
        "--go-client",
        choices=["raw", "grpc"],
        default="raw",
        help="the Go load generator's client: raw (-raw: the same HTTP/2 call, frames encoded once; about half "
        "grpc-go's CPU per request on the shared cores) or grpc (grpc-go)",
    )
    p.add_argument("--ledger-records", type=int, default=20_000, help="records per writer in the ledger comparison")
    p.add_argument("--only", choices=["scaling", "ledger", "calls"], default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.only == "ledger":
        print(json.dumps(ledger_designs(args.ledger_records), indent=2))
    elif args.only == "calls":
        print(json.dumps(group_calls(), indent=2))
    elif args.only == "scaling":
        print(json.dumps(scaling(args), indent=2))
    else:
        print(render(measure_all(args)))  # under ``make bench`` the runner prints it
    return 0


if __name__ == "__main__":
    sys.exit(main())
