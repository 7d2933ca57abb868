"""A backlog of outcomes queued while a commit waits on the disk gives its memory back once it commits.

The stall is made deterministic: another connection holds the ledger's write lock, so the
writer thread waits in ``BEGIN IMMEDIATE`` exactly as it waits in a slow ``fsync`` under
``synchronous=FULL``, while outcomes keep being queued. Memory is read as the process's
RSS in a fresh subprocess (no other test's heap in it), before the backlog, while it is
held, and after it committed.

Before queued records were packed (:mod:`policyd.ledger.spool`), the child below held
about 1.4 KB per queued outcome and kept 22 to 29 MB of it after the backlog committed:
the queued requests' small objects had taken new arenas of Python's allocator, and the
few long-lived objects allocated meanwhile (every 64th request leaves one, as a daemon's
caches and metrics do) kept those arenas from going back to the OS. Packed, it holds
about 0.3 KB per outcome and keeps about 0.1 MB.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from policyd.ledger import writer as writer_mod
from policyd.ledger.records import Finished, finished
from policyd.ledger.spool import PACK_AFTER
from policyd.ledger.store import Report
from policyd.ledger.writer import LedgerWriter
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
    Verdict,
    VerdictKind,
)

WARM = 10_000
"""Records committed before the backlog: past what SQLite's page cache (2 MB) holds of the
file, so that cache is full before the backlog (its growth is not the backlog's)."""

CHILD = r"""
import json, re, sqlite3, sys, time
from pathlib import Path
from policyd.ledger.records import finished
from policyd.ledger.writer import LedgerWriter
from policyd.types import Attempt, AttemptRole, Effort, Explanation, Message, Outcome, OutcomeStatus, Request, Role

def rss_mb():
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024

def record(i):
    request = Request(request_id=f"req-{i:08d}", messages=(Message(role=Role.USER, content=f"question {i} " * 12),))
    attempt = Attempt(index=0, role=AttemptRole.ANSWER, model="bench-model", provider="openai-compatible",
                      effort=Effort.OFF, cost_usd=0.0001, input_tokens=40, output_tokens=30, latency_ms=0.5)
    outcome = Outcome(request_id=request.request_id, status=OutcomeStatus.ACCEPTED,
                      output=Message(role=Role.ASSISTANT, content=f"answer {i} " * 12), attempts=(attempt,),
                      explanation=Explanation(policy="default", rule="bench", strategy="single", reason=f"rule {i}"),
                      total_cost_usd=0.0001, tenant="t", latency_ms=0.6, decision_id=f"d-{i:08d}", trace_id=f"{i:032x}")
    return finished(request, outcome)

path, n = Path(sys.argv[1]), int(sys.argv[2])
WARM = int(sys.argv[3])
writer = LedgerWriter(path, flush_interval_s=0.05, max_batch=500, max_pending=1_000_000)
for i in range(WARM):  # warm up: the statements, the page cache, the allocator's working set
    writer.enqueue(record(i))
while writer.committed_records < WARM:
    time.sleep(0.01)
before = rss_mb()
lock = sqlite3.connect(path, isolation_level=None)
lock.execute("BEGIN IMMEDIATE")  # the writer's next commit waits here, as on a stalled fsync
kept = []
for i in range(WARM, WARM + n):
    writer.enqueue(record(i))
    if i % 64 == 0:
        kept.append((i, f"survivor-{i}"))  # what the requests served meanwhile leave behind
held = rss_mb()
pending = writer.pending()
lock.execute("COMMIT")
lock.close()
while writer.committed_records < WARM + n:
    time.sleep(0.01)
after = rss_mb()
stored = sqlite3.connect(path).execute("SELECT count(*), count(DISTINCT request_id) FROM outcomes").fetchone()
writer.close()
print(json.dumps({"before": before, "held": held, "after": after, "pending": pending, "stored": stored,
                  "committed": writer.committed_records, "dropped": writer.dropped}))
"""


def run_child(tmp_path: Path, n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "ledger.sqlite3"), str(n), str(WARM)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the RSS from /proc")
def test_a_stalled_commits_backlog_is_stored_and_its_memory_returned(tmp_path: Path):
    n = 20_000
    got = run_child(tmp_path, n)
    assert got["dropped"] == 0 and got["committed"] == WARM + n
    assert got["stored"] == [WARM + n, WARM + n], "every queued outcome is stored once, in a row of its own"
    assert got["pending"] >= n // 2, "the backlog was queued while the write lock was held"
    per_record_kb = (got["held"] - got["before"]) * 1024 / got["pending"]
    assert per_record_kb < 0.6, f"{per_record_kb:.2f} KB held per queued outcome"
    kept = got["after"] - got["before"]
    assert kept < 2.0, (
        f"RSS {got['before']:.1f} MB before the backlog, {got['held']:.1f} MB holding {n} outcomes, "
        f"{got['after']:.1f} MB after they committed: {kept:.1f} MB kept"
    )


def make_record(i: int) -> Finished:
    attempts = tuple(
        Attempt(
            index=k,
            role=AttemptRole.VALIDATE if k else AttemptRole.ANSWER,
            model=f"model-{k}",
            provider="simulated",
            effort=Effort.OFF,
            cost_usd=0.001 * (k + 1),
            input_tokens=10 + i,
            output_tokens=20,
            latency_ms=0.25,
            verdict=Verdict(VerdictKind.REJECT, validator="regex", reason=f"no {i}") if k else None,
            error="" if i % 7 else "upstream 503",
        )
        for k in range(1 + i % 3)  # one to three attempts, some failed, some judged
    )
    outcome = Outcome(
        request_id=f"r{i}",
        status=OutcomeStatus.ACCEPTED if i % 5 else OutcomeStatus.UPSTREAM_FAILED,
        output=Message(role=Role.ASSISTANT, content="a"),
        attempts=attempts,
        explanation=Explanation(policy="p", rule="r", strategy="single", reason="", policy_version="v1"),
        total_cost_usd=sum(a.cost_usd for a in attempts),
        tenant=f"t{i % 2}",
        latency_ms=1.5 + i,
        decision_id=f"d{i}",
    )
    return finished(Request(request_id=f"r{i}", messages=(Message(role=Role.USER, content="q"),)), outcome, now=1e9 + i)


def table(path: Path, name: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT * FROM {name} ORDER BY rowid").fetchall()
    finally:
        conn.close()


async def test_outcomes_packed_behind_a_stalled_commit_are_stored_as_if_queued_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    packed: list[str] = []
    real_pack = writer_mod.pack

    def pack(record: Finished) -> bytes:
        packed.append(record.request.request_id)
        return real_pack(record)

    monkeypatch.setattr(writer_mod, "pack", pack)
    n = 3 * PACK_AFTER
    plain = LedgerWriter(tmp_path / "plain.sqlite3", flush_interval_s=0.01, max_batch=10, max_pending=10_000)
    for i in range(n):
        assert plain.enqueue(make_record(i))
        if i % 10 == 9:
            await plain.flush()  # never more than ten queued: nothing is packed
    await plain.flush()
    plain.close()
    assert packed == []

    stalled_path = tmp_path / "stalled.sqlite3"
    stalled = LedgerWriter(stalled_path, flush_interval_s=60, max_batch=100_000, max_pending=10_000)
    lock = sqlite3.connect(stalled_path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the writer's commit waits, as on a slow fsync
    for i in range(n):
        assert stalled.enqueue(make_record(i))
    assert stalled.pending() == n
    assert len(packed) == n - PACK_AFTER, "every outcome queued behind PACK_AFTER others is packed"
    report = asyncio.ensure_future(stalled.commit(Report(request_id=f"r{n - 1}", success=False, note="late")))
    await asyncio.sleep(0.05)
    assert not report.done(), "the commit waits for the write lock"
    lock.execute("COMMIT")
    lock.close()
    assert await report is True, "a report queued behind packed outcomes finds its outcome"
    stalled.close()
    rows, expected = table(stalled_path, "outcomes"), table(tmp_path / "plain.sqlite3", "outcomes")
    assert (rows[-1][13], rows[-1][15]) == (0, "late"), "the report's success and note (only this ledger got one)"
    assert [row[:13] + row[17:] for row in rows] == [row[:13] + row[17:] for row in expected]
    assert table(stalled_path, "attempts") == table(tmp_path / "plain.sqlite3", "attempts")
