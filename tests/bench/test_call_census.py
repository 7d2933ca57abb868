"""bench/call_census.py: counts the Python calls of requests through the servicer, with the HTTP
provider calling the fake upstream. The counts are deterministic, so the test checks what they must
show: a replayed hit makes far fewer calls than a miss, and turning the cache off saves calls."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_call_census_counts_fewer_calls_for_a_hit_than_for_a_miss():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "call_census.py"), "--tree", f"here={ROOT}", "--requests", "40",
         "--top", "3"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    calls = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(\w+)\s+here\s+([\d.]+) Python calls\s+[\d.]+ builtin calls", proc.stdout, re.M)
    }
    assert set(calls) == {"default", "nocache", "cache"}, proc.stdout
    assert 0 < calls["cache"] < calls["nocache"] < calls["default"], calls
    listed = [line for line in proc.stdout.splitlines() if line.startswith("    ")]
    assert len(listed) == 9 and all("(" in line for line in listed), listed
