"""kill -9 under load: the ledger opens again and nothing acknowledged as durable is missing."""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import grpc.aio
import pytest

from policyd.ledger.store import connect, ledger_path
from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
version: durability-1
providers:
  simulated: {{kind: simulated, latency_scale: 0.02}}
ledger: {{durability: {durability}, flush_interval_ms: 50, max_batch: 100000}}
policies:
  default:
    rules:
      - name: plain
        plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}
"""
WINDOW_SLACK_S = 2.0
"""Replies older than this before the kill must be committed (the window is 50 ms)."""
REPORTS_FOR_S = 0.5
LOAD_S = 3.5
MIN_REPLIES = 60
MAX_LOAD_S = 30.0


def start_daemon(config: Path, data_dir: Path, log: Path) -> tuple[subprocess.Popen[str], int]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}",
        "POLICYD_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    argv = [sys.executable, "-m", "policyd", "serve", "--config", str(config), "--data-dir", str(data_dir)]
    proc = subprocess.Popen(
        [*argv, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=log.open("a"),
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if sel.select(timeout=0.5):
            line = proc.stdout.readline()
            if line.startswith("policyd listening on "):
                return proc, int(line.split()[3].rsplit(":", 1)[1])
            if not line and proc.poll() is not None:
                break
    proc.kill()
    pytest.fail(f"daemon did not start: {log.read_text()}")


async def load_then_kill(proc: subprocess.Popen[str], port: int, *, seconds: float) -> tuple[dict, set, float]:
    """Send requests from 16 workers, kill -9 after ``seconds`` while they run.

    Every 5th reply of the first ``REPORTS_FOR_S`` after the first reply is reported, the
    first one included (a report commits the queue; counted from the first reply, since a
    loaded machine may take longer than that to answer at all); later replies reach the
    ledger only through the writer's interval. The load goes on until replies later than
    that window are old enough to be checked (``WINDOW_SLACK_S`` before the kill), however
    slowly a loaded machine answers.
    """
    started = time.monotonic()
    first_reply: list[float] = []
    replied: dict[str, float] = {}
    reported: set[str] = set()
    stop = asyncio.Event()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = policyd_pb2_grpc.PolicyServiceStub(channel)

        async def worker(w: int) -> None:
            n = 0
            while not stop.is_set():
                rid = f"w{w}-{n}"
                n += 1
                msg = pb.CompleteRequest(request_id=rid, messages=[pb.Message(role=pb.ROLE_USER, content=rid)])
                try:
                    await stub.Complete(msg, timeout=5)
                    replied[rid] = time.monotonic()
                    first_reply[:] = first_reply or [replied[rid]]
                    if len(replied) % 5 == 1 and replied[rid] - first_reply[0] < REPORTS_FOR_S:
                        await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id=rid, success=False), timeout=5)
                        reported.add(rid)
                except grpc.aio.AioRpcError:
                    return

        workers = [asyncio.create_task(worker(w)) for w in range(16)]
        await asyncio.sleep(seconds)
        # A loaded machine answers slowly: keep the load on until there is enough to prove anything.
        while time.monotonic() - started < MAX_LOAD_S and not enough(replied, first_reply):  # noqa: ASYNC110 - polls counts
            await asyncio.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), timeout=15)
    proc.wait(timeout=10)
    return replied, reported, killed_at


def enough(replied: dict[str, float], first_reply: list[float]) -> bool:
    """Enough replies, and some of them later than the reports' window by more than the
    slack the check leaves before the kill."""
    if len(replied) < MIN_REPLIES or not first_reply:
        return False
    checked_after = first_reply[0] + REPORTS_FOR_S + 0.5
    return any(at > checked_after for at in replied.values()) and (
        time.monotonic() > checked_after + WINDOW_SLACK_S + 0.5
    )


def ledger_rows(data_dir: Path) -> dict[str, int | None]:
    conn = connect(ledger_path(data_dir), create=False)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return dict(conn.execute("SELECT request_id, reported_success FROM outcomes"))
    finally:
        conn.close()


@pytest.mark.parametrize("durability", ["batch", "sync"])
async def test_kill_9_under_load_loses_nothing_acknowledged(tmp_path: Path, durability: str):
    config = tmp_path / "policy.yaml"
    config.write_text(textwrap.dedent(CONFIG.format(durability=durability)), encoding="utf-8")
    data_dir, log = tmp_path / "data", tmp_path / "daemon.log"
    proc, port = start_daemon(config, data_dir, log)
    replied, reported, killed_at = await load_then_kill(proc, port, seconds=LOAD_S)
    assert proc.returncode == -signal.SIGKILL
    assert len(replied) >= MIN_REPLIES and reported, f"too little load to prove anything ({len(replied)} replies)"

    rows = ledger_rows(data_dir)
    missing_reports = [rid for rid in reported if rows.get(rid, "absent") != 0]
    assert not missing_reports, "an acknowledged ReportOutcome (which commits its outcome first) was lost"
    if durability == "sync":
        acknowledged = set(replied)  # every reply is an acknowledgement
    else:
        acknowledged = {rid for rid, at in replied.items() if at < killed_at - WINDOW_SLACK_S}
        last_report = max(replied[rid] for rid in reported)
        assert any(at > last_report + 0.2 for at in (replied[rid] for rid in acknowledged)), (
            "some checked replies must depend on the writer's interval alone, not on a report's flush"
        )
    assert acknowledged
    lost = acknowledged - rows.keys()
    assert not lost, f"{len(lost)} acknowledged outcomes lost, e.g. {sorted(lost)[:3]}"

    proc, port = start_daemon(config, data_dir, log)  # the daemon opens the ledger again
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stats = await policyd_pb2_grpc.PolicyServiceStub(channel).GetStats(pb.GetStatsRequest(), timeout=10)
        assert stats.rows[0].requests == len(rows)
        assert stats.rows[0].reported >= len(reported)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


async def test_shutdown_commits_what_is_still_queued(live):
    daemon, _, stub = await live(
        CONFIG.format(durability="batch").replace("flush_interval_ms: 50", "flush_interval_ms: 60000")
    )
    for i in range(7):
        msg = pb.CompleteRequest(request_id=f"s{i}", messages=[pb.Message(role=pb.ROLE_USER, content="x")])
        await stub.Complete(msg)
    assert daemon.ledger.writer.committed_records == 0
    await daemon.aclose()
    conn = sqlite3.connect(ledger_path(daemon.data_dir))
    assert conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0] == 7
    conn.close()
