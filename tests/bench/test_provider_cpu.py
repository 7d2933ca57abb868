"""bench/provider_cpu.py: the HTTP provider alone in a child process per tree, and the lean-POST floor.

Figures are printed, never asserted (the machine is shared): the test checks the harness works
and that every call of each row got the fake upstream's answer (the script refuses otherwise).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_provider_cpu_prints_a_median_per_tree_and_for_the_floor():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "provider_cpu.py"), "--tree", f"here={ROOT}", "--rounds", "1",
         "--requests", "50", "--concurrency", "4", "--floor"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("medians of 1 rounds, 50 calls each")
    for row in ("here", "floor"):
        line = next(line for line in lines if line.startswith(row))
        found = re.search(r"^\w+\s+([\d.]+) us/call", line)
        assert found is not None and float(found.group(1)) > 0, line
