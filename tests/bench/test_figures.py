"""The closing summary table of ``make bench``: rows, comparators, and what a missing figure shows."""

from __future__ import annotations

import math
import re

import pytest

from bench import frontdoor_bench, streaming_bench
from bench.figures import Row, render, rows, summary


def test_a_row_is_met_or_missed_by_its_comparator_and_unmeasured_without_a_value():
    assert Row("ttft", 0.4, 0.5, "ms", "<=").met is True
    assert Row("ttft", 0.6, 0.5, "ms", "<=").met is False
    assert Row("ratio", 0.5, 0.5, "x", ">=").met is True
    assert Row("ratio", 0.49, 0.5, "x", ">=").met is False
    assert Row("ttft", None, 0.5, "ms").met is None
    assert Row("ttft", math.nan, 0.5, "ms").met is None


def test_a_row_refuses_an_unknown_comparator():
    with pytest.raises(ValueError, match="comparator must be"):
        Row("x", 1.0, 2.0, "ms", "<")  # type: ignore[arg-type]


def test_summary_lays_out_one_line_per_row_with_its_verdict_and_why_it_was_not_measured():
    table = summary(
        [
            Row("streaming TTFT added, gRPC, c=1", 0.42, 0.5, "ms", "<="),
            Row("cache hits vs echo, by CPU", 0.44, 0.7, "x", ">="),
            Row("LiteLLM CPU per request / policyd's", None, 20.0, "x", ">=", "not installed: pip install litellm"),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["figure", "measured", "target"]
    assert lines[2].startswith("streaming TTFT added, gRPC, c=1") and lines[2].endswith("<= 0.50 ms  met")
    assert "0.44x" in lines[3] and lines[3].endswith(">= 0.70x  MISSED")
    unmeasured = r"LiteLLM .* policyd's +- +>= 20.00x  not measured: not installed: pip install litellm"
    assert re.fullmatch(unmeasured, lines[4])


def test_the_runner_rows_compare_each_scenario_with_the_echo_server_by_cpu_per_request():
    phase = {"p50_ms": 2.0, "p99_ms": 5.0, "rps": 1000.0}
    results = {
        "scenarios": {
            "echo": {"open": phase, "closed": phase, "cpu_us_per_req": 250.0},
            "direct": {"open": {**phase, "p50_ms": 1.5}, "closed": phase, "cpu_us_per_req": 15.0},
            "passthrough": {"open": {**phase, "p50_ms": 2.3}, "closed": phase, "cpu_us_per_req": 500.0},
        },
        "settings": {"rate": 100.0},
    }
    by_name = {row.name: row for row in rows(results)}
    assert by_name["passthrough (cache off) vs echo, by CPU"].measured == 0.5
    assert by_name["passthrough (cache off) vs echo, by CPU"].met is True
    assert by_name["passthrough added p50 at 100 RPS"].measured == pytest.approx(0.8)
    assert by_name["cache hits vs echo, by CPU"].met is None, "no cache scenario ran"
    assert by_name["RSS peak over the soak"].note == "soak skipped (--soak 0)"


def test_the_soak_growth_row_says_when_the_data_dir_stalled_and_measures_it_either_way():
    soak = {"rss_peak_mb": 104.0, "rss_growth_pct": 8.7, "fsync_max_ms": 2900.0}
    growth = {row.name: row for row in rows({"soak": soak})}["RSS growth over the soak"]
    assert (growth.measured, growth.met) == (8.7, False), "a stall explains the figure, it does not excuse it"
    assert growth.note == "disk stalled: fsync up to 2900 ms (docs/benchmarks.md)"
    quiet = {row.name: row for row in rows({"soak": {**soak, "fsync_max_ms": 3.0}})}["RSS growth over the soak"]
    assert quiet.note == ""
    held = {"soak": {**soak, "fsync_max_ms": 3.0, "ledger_held": "1500 ms every 5 s"}}
    assert {row.name: row for row in rows(held)}["RSS growth over the soak"].note == (
        "ledger write lock held 1500 ms every 5 s on purpose"
    ), "a soak run with --soak-hold-ms says so"


def test_front_door_rows_give_the_litellm_ratio_when_its_leg_ran_and_how_to_install_it_when_not():
    door = {"p50_ms": 1.9, "base_p50_ms": 1.2, "cpu_us": 800.0}
    with_litellm = frontdoor_bench.rows({"legs": {"policyd": door, "litellm": {"cpu_us": 11200.0}}})
    assert [(r.name, round(r.measured or 0, 2), r.met) for r in with_litellm] == [
        ("front door added p50, c=1", 0.7, True),
        ("LiteLLM CPU per request / policyd's (per core)", 14.0, False),
    ]
    [added, ratio] = frontdoor_bench.rows({"legs": {"policyd": door}})
    assert added.met is True and ratio.met is None
    assert ratio.note == f"not installed: {frontdoor_bench.INSTALL}"
    [added, ratio] = frontdoor_bench.rows({"error": "policyd did not start"})
    assert added.met is None and added.note == ratio.note == "front-door bench failed: policyd did not start"


def test_streaming_rows_read_the_added_ttft_of_both_doors_at_both_concurrencies():
    results = {
        "concurrency": 16,
        "c1": {"policyd grpc": {"added_ttft_ms": 0.4}, "policyd http": {"added_ttft_ms": 0.6}},
        "c16": {"policyd grpc": {"added_ttft_ms": 3.0}},
    }
    got = [(r.name, r.measured, r.met) for r in streaming_bench.rows(results)]
    assert got == [
        ("streaming TTFT added, gRPC, c=1", 0.4, True),
        ("streaming TTFT added, HTTP, c=1", 0.6, False),
        ("streaming TTFT added, gRPC, c=16", 3.0, False),
        ("streaming TTFT added, HTTP, c=16", None, None),
    ]


def test_the_scenario_table_shows_a_scenario_it_has_no_title_for_under_its_key():
    phase = {"p50_ms": 2.0, "p99_ms": 5.0, "rps": 1000.0}
    scenario = {"open": phase, "closed": phase, "cpu_us_per_req": 500.0}
    table = render({"scenarios": {"echo": {**scenario, "cpu_us_per_req": 250.0}, "default-config": scenario}})
    assert any(line.startswith("default-config ") for line in table.splitlines())


def test_a_failed_streaming_run_leaves_its_rows_unmeasured_with_the_reason():
    got = streaming_bench.rows({"error": "RuntimeError: x did not start"})
    assert len(got) == 4 and all(r.met is None for r in got)
    assert {r.note for r in got} == {"streaming bench failed: RuntimeError: x did not start"}
