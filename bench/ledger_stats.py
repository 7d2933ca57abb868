#!/usr/bin/env python3
"""How fast the ledger writes and answers stats: inserts N outcomes (one transaction, as the
writer's batches do), then times GetStats' query grouped and ungrouped.

Usage: ``python bench/ledger_stats.py [N]`` (default 200000).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from policyd.ledger.records import Values  # noqa: E402
from policyd.ledger.stats import StatsQuery, compute  # noqa: E402
from policyd.ledger.store import connect, insert_outcomes  # noqa: E402


def record(i: int, now: float) -> Values:
    """Outcome ``i``'s row (:data:`~policyd.ledger.records.OUTCOME_COLUMNS` after ``seq``), no attempts."""
    outcome = (
        f"r{i}",  # request_id
        now - i,  # ts
        f"tenant-{i % 10}",
        f"policy-{i % 3}",
        "rule",
        "coding",
        "fallback",
        "v",  # policy_version
        '["m"]',  # models
        "m",  # final_model
        "accepted",
        int(i % 9 != 0),  # default_success
        0.001,  # cost_usd
        0.0,  # saved_usd
        0,  # tokens_saved
        100,  # input_tokens
        200,  # output_tokens
        50.0 + i % 100,  # latency_ms
        0,  # cached
        int(i % 7 == 0),  # escalated
        1,  # validations
        1,  # validations_passed
        0,  # attempts
        0,  # failed_attempts
        "",  # decision_id
        "",  # trace_id
    )
    return outcome, []


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    conn = connect(Path(tempfile.mkdtemp(prefix="policyd-bench-")) / "ledger.sqlite3", create=True)
    now = time.time()
    records = [record(i, now) for i in range(n)]
    started = time.perf_counter()
    conn.execute("BEGIN")
    insert_outcomes(conn, records)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    print(f"insert {n} outcomes: {elapsed:.2f} s ({n / elapsed:,.0f} records/s)")
    for label, query in [
        ("all time, ungrouped", StatsQuery()),
        ("all time, by policy,tenant", StatsQuery(group_by=("policy", "tenant"))),
        ("last 24 h, by tenant", StatsQuery(window_s=86_400, group_by=("tenant",), now=now)),
    ]:
        started = time.perf_counter()
        rows = compute(conn, query)
        print(f"stats {label}: {time.perf_counter() - started:.3f} s, {len(rows)} rows")


if __name__ == "__main__":
    main()
