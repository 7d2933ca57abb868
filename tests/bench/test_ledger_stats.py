"""bench/ledger_stats.py writes through the ledger's own insert path and reads its stats:
a small run proves the script still matches the ledger's API (it once fell behind it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ledger_stats_bench_inserts_and_queries() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ledger_stats.py"), "900"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("insert 900 outcomes:")
    # 900 outcomes over 3 policies x 10 tenants: one ungrouped row, 30 pairs, 10 tenants.
    assert [line.rsplit(", ", 1)[1] for line in lines[1:]] == ["1 rows", "30 rows", "10 rows"]
