"""bench/servicer_cpu.py: calls the gRPC servicer in a child process per tree and prints CPU per request.

Figures are printed, never asserted (the machine is shared): the test checks the harness works,
that every request succeeds and that repeated hits are replayed from memory.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_servicer_cpu_prints_a_median_per_scenario_and_replays_the_hits():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "servicer_cpu.py"), "--tree", f"here={ROOT}", "--rounds", "1",
         "--requests", "300"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("medians of 1 rounds, 300 requests each")
    for scenario in ("hits", "misses"):
        row = next(line for line in lines if line.startswith(scenario))
        found = re.search(r"here\s+([\d.]+) us/req", row)
        assert found is not None and float(found.group(1)) > 0, row
    replayed = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"(hits|misses)\s+here\s+[\d.]+ us/req, (\d+) replayed", proc.stderr)
    }
    assert replayed["hits"] >= 300 and replayed["misses"] == 0
