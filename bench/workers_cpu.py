"""Where the cores go with ``--workers N``: per-process CPU per request, per-worker requests.

Throughput on a shared 2-core box is noisy; CPU time is not. For one daemon (N=1) or a group
(N=2) under the Go load generator (``clients/go/cmd/policyd-load``) this reads, over the
measured phase only, the user + system CPU of every process on the request's way: the
supervisor, each worker (its main thread, the event loop, and its other threads: the ledger
and cache writers, gRPC's), the fake upstream and the load generator (its own getrusage). It
also maps each of the load generator's TCP connections to the worker that accepted it
(``/proc/<pid>/fd`` socket inodes against ``/proc/net/tcp``), which gives the requests each
worker answered: SO_REUSEPORT balances connections, not requests.

Two loads per setup: open loop at a fixed rate below saturation (``--rate``), where the CPU per
request is the work itself, and closed loop at saturation, where the req/s is the figure.
Setups (``--setups``): ``passthrough`` (the scaling bench's: cache off, ledger on),
``default`` (cache and ledger on, every prompt new), ``bare`` (cache and ledger off).

    python bench/workers_cpu.py --setups passthrough,bare --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench.scenarios import scenarios  # noqa: E402
from bench.workers_bench import ENV, _start, _stop, go_loadgen  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
SETUPS = {
    "passthrough": ("passthrough", ""),
    "default": ("default", ""),
    "bare": ("passthrough", "ledger: {enabled: false}\n"),
}
"""setup -> (scenario of bench/scenarios.py, text appended to its policy file)."""


def ticks(pid: int, tid: int | None = None) -> int:
    """utime + stime of a process (all its threads) or of one of its threads, in clock ticks."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def roles(daemon_pid: int, n: int) -> dict[str, int]:
    """``supervisor`` (N > 1 only) and ``worker0``...: N = 1 is one daemon with no supervisor."""
    if n == 1:
        return {"worker0": daemon_pid}
    workers = sorted(children(daemon_pid))
    return {"supervisor": daemon_pid, **{f"worker{i}": pid for i, pid in enumerate(workers)}}


def snapshot(pids: dict[str, int]) -> dict[str, int]:
    """Every role's CPU ticks, and each worker's main thread (its event loop) as ``<role>.loop``."""
    out = {role: ticks(pid) for role, pid in pids.items()}
    for role, pid in pids.items():
        if role.startswith("worker"):
            out[f"{role}.loop"] = ticks(pid, pid)
    return out


def _inodes(pid: int) -> set[str]:
    found = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                found.add(target[8:-1])
    except OSError:
        pass
    return found


def peer_ports(pid: int, local_port: int) -> set[int]:
    """Remote ports of ``pid``'s established TCP connections accepted on ``local_port``."""
    mine = _inodes(pid)
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != "01" or f[9] not in mine:  # 01: ESTABLISHED
                continue
            if int(f[1].rsplit(":", 1)[1], 16) == local_port:
                ports.add(int(f[2].rsplit(":", 1)[1], 16))
    return ports


def one_run(config: Path, data_dir: Path, n: int, load: list[str], upstream_pid: int, log: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "policyd", "--log-level", "WARNING", "serve", "--config", str(config)]
    cmd += ["--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--workers", str(n)]
    daemon, address = _start(cmd, "policyd listening on", stderr=log)
    port = int(address.rsplit(":", 1)[1])
    try:
        pids = roles(daemon.pid, n)
        gen = subprocess.Popen([*load, "-addr", address], stdout=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
        assert gen.stdout is not None
        line = gen.stdout.readline()
        if "measuring" not in line:
            raise RuntimeError(f"load generator: {line!r}")
        before = {**snapshot(pids), "upstream": ticks(upstream_pid)}
        workers_of = {role: peer_ports(pid, port) for role, pid in pids.items() if role.startswith("worker")}
        load_avg = os.getloadavg()[0]
        result = json.loads(gen.stdout.readline())
        after = {**snapshot(pids), "upstream": ticks(upstream_pid)}
        gen.wait(timeout=60)
    finally:
        _stop(daemon)
    count = max(1, result["count"] + result["errors"])
    cpu_us = {role: round((after[role] - before[role]) / TICK * 1e6 / count, 1) for role in before}
    cpu_us["loadgen"] = round(result["cpu_s"] * 1e6 / count, 1)
    by_port = {c["local_port"]: c["count"] for c in result["connections"]}
    per_worker = {
        role: {"connections": len(ports), "requests": sum(by_port.get(p, 0) for p in ports)}
        for role, ports in workers_of.items()
    }
    cores = {role: round((after[role] - before[role]) / TICK / result["seconds"], 2) for role in before}
    cores["loadgen"] = round(result["cpu_s"] / result["seconds"], 2)
    return {
        "rps": result["rps"],
        "p50_ms": result["p50_ms"],
        "errors": result["errors"],
        "cpu_us_per_req": cpu_us,
        "cores_used": cores,
        "per_worker": per_worker,
        "load_avg": round(load_avg, 2),
        "log_warnings": [x for x in log.read_text(errors="replace").splitlines() if x.strip()][:5],
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    upstream, upstream_address = _start(
        [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--latency-ms", "0"], "fake upstream listening on"
    )
    by_key = {sc.key: sc for sc in scenarios(f"http://{upstream_address}")}
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="policyd-workers-cpu-") as tmp:
            binary = go_loadgen(Path(tmp))
            if binary is None:
                raise SystemExit("workers_cpu needs Go (clients/go/cmd/policyd-load)")
            for r in range(args.repeat):
                for setup in args.setups.split(","):
                    key, extra = SETUPS[setup]
                    config = Path(tmp) / f"{setup}.yaml"
                    text = by_key[key].config
                    assert text is not None, f"{key} cannot run in this build"
                    config.write_text(text + extra, encoding="utf-8")
                    common = [str(binary), "-connections", str(args.connections), "-warmup", "300"]
                    common += ["-raw"] if args.go_client == "raw" else []
                    common += ["-duration", f"{args.duration}s"] + (["-unique"] if setup == "default" else [])
                    loads = {"open": ["-rate", str(args.rate)], "closed": ["-concurrency", str(args.concurrency)]}
                    for mode in args.modes.split(","):
                        for n in (1, 2):
                            name = f"{setup}/{mode}/N={n}"
                            data = Path(tmp) / f"data-{setup}-{n}-{r}"
                            log = Path(tmp) / f"{setup}-{n}-{r}.log"
                            out = one_run(config, data, n, [*common, *loads[mode]], upstream.pid, log)
                            runs.setdefault(name, []).append(out)
                            print(name, json.dumps(out), flush=True)
    finally:
        _stop(upstream)
    return {"runs": runs, "summary": summarize(runs)}


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per run name: req/s, CPU us per request per role, cores used per role."""
    out: dict[str, Any] = {}
    for name, rs in runs.items():
        roles_ = rs[0]["cpu_us_per_req"].keys()
        out[name] = {
            "rps": statistics.median(r["rps"] for r in rs),
            "cpu_us_per_req": {k: statistics.median(r["cpu_us_per_req"][k] for r in rs) for k in roles_},
            "cores_used": {k: statistics.median(r["cores_used"][k] for r in rs) for k in roles_},
            "load_avg": [r["load_avg"] for r in rs],
        }
    return out


def render(summary: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> str:
    """One line per setup/load/N: req/s, then CPU us per request of each role (medians)."""
    lines = [
        "run | req/s | CPU us/request: " + ", ".join(["supervisor", "workers (loop)", "upstream", "loadgen", "all"])
    ]
    for name, s in summary.items():
        cpu = s["cpu_us_per_req"]
        workers = sum(v for k, v in cpu.items() if k.startswith("worker") and "." not in k)
        loops = sum(v for k, v in cpu.items() if k.endswith(".loop"))
        total = workers + cpu.get("supervisor", 0.0) + cpu["upstream"] + cpu["loadgen"]
        split = [[w["requests"] for w in r["per_worker"].values()] for r in runs[name]]
        conns = [[w["connections"] for w in r["per_worker"].values()] for r in runs[name]]
        lines.append(
            f"{name} | {s['rps']:.0f} | {cpu.get('supervisor', 0.0):.1f}, {workers:.0f} ({loops:.0f}), "
            f"{cpu['upstream']:.0f}, {cpu['loadgen']:.0f}, {total:.0f} | requests per worker {split}, "
            f"connections {conns} | load {s['load_avg']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setups", default="passthrough", help=f"comma-separated, of {sorted(SETUPS)}")
    p.add_argument("--modes", default="open,closed", help="open (fixed --rate), closed (saturation)")
    p.add_argument("--rate", type=float, default=400.0, help="open loop: requests per second")
    p.add_argument("--concurrency", type=int, default=32, help="closed loop: requests in flight")
    p.add_argument("--connections", type=int, default=16, help="the load generator's TCP connections")
    p.add_argument("--duration", type=float, default=6.0)
    p.add_argument("--go-client", choices=["raw", "grpc"], default="raw", help="policyd-load -raw, or grpc-go")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--json", default=None, help="also write every run's figures to this file")
    args = p.parse_args(argv)
    results = measure(args)
    print(render(results["summary"], results["runs"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
