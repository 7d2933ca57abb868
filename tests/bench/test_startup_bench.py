"""bench/startup_bench.py: starts the offline default, sees SERVING, and checks the first Complete answers.

Figures are printed, never asserted (the machine is shared): the test checks the harness works.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.startup_bench import (
    GROUP_UNTIL_SERVE,
    SUPERVISOR_UNTIL_SPAWN,
    WORKER_UNTIL_SERVE,
    child_env,
    parse_instructions,
    render,
)

ROOT = Path(__file__).resolve().parents[2]


def test_startup_bench_reports_exec_to_serving_with_its_target():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "startup_bench.py"), "--runs", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["runs"] == 2 and len(figures["samples_s"]) == 2
    assert 0 < figures["min_s"] <= figures["median_s"] <= figures["max_s"]
    assert figures["target_s"] == 0.5
    assert figures["workers"] == "default"  # one per core: with more than one, a supervisor and its workers
    split = figures["cpu_main_median_s"] + figures["cpu_children_median_s"]
    assert figures["cpu_median_s"] > 0 and abs(figures["cpu_median_s"] - split) <= 0.1 * split + 0.02
    assert figures["min_s"] <= figures["answered_median_s"]  # the first Complete, sent at SERVING, answered
    assert figures["heavy_loaded"] == []  # the offline default loads none of the deferred modules
    assert render(figures) in proc.stdout
    assert "target ≤ 0.5 s" in proc.stdout


@pytest.mark.parametrize(
    ("script", "reached"),
    [
        (WORKER_UNTIL_SERVE, "server would start"),
        (SUPERVISOR_UNTIL_SPAWN, "first worker would start"),
        (GROUP_UNTIL_SERVE, "first worker's server would start"),
    ],
)
def test_the_counted_start_ups_reach_their_end_point(script: str, reached: str, tmp_path: Path):
    """``--instructions`` counts these scripts under valgrind; here they run plainly, to their stop."""
    env = child_env(ROOT, None)  # no POLICYD_* or OTEL_* variable: the offline default
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == reached


def test_the_instruction_count_is_read_from_cachegrinds_summary():
    report = "==7== Cachegrind, a high-precision tracing profiler\n==7== \n==7== I   refs:      1,670,404,451\n"
    assert parse_instructions(report) == 1_670_404_451
    forked = "==8== I   refs:      1,500,000,000\n" + report  # a forked child's count includes its parent's
    assert parse_instructions(forked) == 1_670_404_451
    with pytest.raises(RuntimeError, match="no instruction count"):
        parse_instructions("valgrind: command not found")
