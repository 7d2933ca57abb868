"""bench/engine_cpu.py: builds the daemon's engine in a child process per tree and prints CPU per request.

Figures are printed, never asserted (the machine is shared): the test checks the harness works
and that every scenario's requests go through the engine.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_cpu_prints_a_median_per_scenario_and_tree():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "engine_cpu.py"), "--tree", f"here={ROOT}", "--rounds", "1",
         "--requests", "50", "--concurrency", "4"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("medians of 1 rounds, 50 requests each")
    for scenario in ("default", "nocache", "cache"):
        row = next(line for line in lines if line.startswith(scenario))
        found = re.search(r"here\s+(\d+) us/req", row)
        assert found is not None and int(found.group(1)) > 0, row
