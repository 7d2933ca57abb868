"""``policyd eval`` end to end on generated datasets: real engine, replay provider, fitted gates."""

from __future__ import annotations

import asyncio
import json

import pytest

from policyd.cli.main import main
from policyd.eval.fit import Choice, fit_threshold, folds
from policyd.eval.gates import parse_gate
from policyd.eval.metrics import point
from policyd.eval.records import Record, write_jsonl
from policyd.eval.runner import Arm, run_arms
from policyd.eval.sources import load_dataset
from tests.eval.synthetic import CHEAP, STRONG, records, write


def run_eval(capsys, tmp_path, dataset: str, *extra: str) -> tuple[str, dict]:
    out = tmp_path / "out"
    code = main(["eval", "--dataset", dataset, "--out", str(out), "--no-progress", *extra])
    assert code == 0
    return capsys.readouterr().out, json.loads((out / "report.json").read_text())


def test_eval_prints_the_table_writes_json_and_a_png(capsys, tmp_path):
    path = write(tmp_path / "r.jsonl")
    text, doc = run_eval(capsys, tmp_path, f"jsonl:{path}")
    for column in ("accuracy", "USD/query", "USD/success", "above cheap", "strong", "PGR", "CPT(50%)", "APGR"):
        assert column in text
    assert "95% CI" in text
    assert doc["engine_vs_direct_mismatches"] == 0
    assert doc["fitting"].startswith("the dataset's train split: fitted on 120 train items")
    # The logprob gate is the one cross-validation picks on train here, and it runs on fail-fast
    # with policyd's own logprob-confidence validator; the routers run on the route strategy.
    assert "logprob" in " ".join(doc["gates_chosen_by_cross_validation"])
    assert "operating points ran on: fail-fast, route" in doc["notes"]
    rows = {r["label"]: r for r in doc["rows"]}
    weak, strong = rows[f"always {CHEAP}"], rows[f"always {STRONG}"]
    gated = rows["cascade pgr:0.8"]
    assert weak["n"] == gated["n"] == 120  # reported on the test split only
    assert weak["accuracy"] < gated["accuracy"]
    assert weak["usd_per_query"] < gated["usd_per_query"] < strong["usd_per_query"] + weak["usd_per_query"]
    assert 0 < gated["strong_share"] < 1
    # Exact thresholds: the float the engine ran with, not a rounded label.
    [t] = gated["thresholds"]
    assert isinstance(t, float) and repr(t) in text
    for row in doc["rows"]:
        lo, hi = row["ci"]["accuracy"]
        assert lo <= row["accuracy"] <= hi
        assert row["ci"]["cost_per_success"][0] <= row["cost_per_success"] <= row["ci"]["cost_per_success"][1]
    kinds = {r["kind"] for r in doc["rows"]}
    assert {"baseline", "single", "cascade", "router", "route", "route+learned-gate", "kNN-router", "oracle"} <= kinds
    cascade_curve = doc["curves"][0]
    assert cascade_curve["apgr"] > 0.5  # confidence predicts correctness better than chance
    assert (tmp_path / "out" / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "routers" / "synthetic-fold0.json").exists()


def test_threshold_comes_from_train_only(tmp_path):
    recs = records()
    ds = load_dataset(f"jsonl:{write(tmp_path / 'a.jsonl')}")
    # Same train split, test confidences scrambled: the fitted threshold must not move.
    scrambled = [
        Record(**{**r.to_json(), "signals": {"logprob_conf": -5.0}}) if r.split == "test" and r.signals else r
        for r in recs
    ]
    write_jsonl(scrambled, tmp_path / "b.jsonl")
    other = load_dataset(f"jsonl:{tmp_path / 'b.jsonl'}")
    gate = parse_gate("logprob")
    [fold] = folds(ds, ds.items(), 5)
    assert set(fold.train).isdisjoint(fold.test)
    assert fit_threshold(ds, fold.train, ds.ladder, gate, "pgr:0.8") == fit_threshold(
        other, fold.train, other.ladder, gate, "pgr:0.8"
    )


def test_dataset_without_split_is_cross_validated(capsys, tmp_path):
    path = write(tmp_path / "r.jsonl", n_train=100, n_test=50, split=False)
    ds = load_dataset(f"jsonl:{path}")
    parts = folds(ds, ds.items(), 4)
    assert sorted(i for f in parts for i in f.test) == sorted(ds.items())
    assert all(set(f.train).isdisjoint(f.test) for f in parts)
    _, doc = run_eval(
        capsys, tmp_path, f"jsonl:{path}", "--folds", "4", "--objective", "pgr:0.5", "--no-plot", "--no-routers"
    )
    assert doc["fitting"].startswith("4-fold")
    assert doc["rows"][0]["n"] == 150
    assert doc["engine_vs_direct_mismatches"] == 0


def test_agreement_with_the_strong_model_falls_back_to_the_strong_model_alone(capsys, tmp_path):
    path = write(tmp_path / "r.jsonl")
    _, doc = run_eval(
        capsys, tmp_path, f"jsonl:{path}", "--gate", f"format:####+agreement:{STRONG}", "--no-plot", "--no-routers"
    )
    # Agreement with the strong model pays a strong call on every item: calling the strong model alone
    # gives the same answers for less, so that is what the fit ships (never "call both on every item").
    strong = next(r for r in doc["rows"] if r["label"] == f"always {STRONG}")
    for objective in ("pgr:0.5", "pgr:0.8", "pgr:0.95"):
        row = next(r for r in doc["rows"] if r["label"] == f"cascade {objective}")
        assert row["usd_per_query"] == pytest.approx(strong["usd_per_query"])
        assert row["threshold"] == f"{STRONG} only"
    assert doc["engine_vs_direct_mismatches"] == 0


def test_agreement_gate_runs_on_eval_ladder_and_counts_its_calls(tmp_path):
    ds = load_dataset(f"jsonl:{write(tmp_path / 'r.jsonl')}")
    gate = parse_gate(f"format:####+agreement:{STRONG}")
    items = tuple(ds.items("test"))
    [run] = asyncio.run(run_arms(ds, [Arm("agree", ((items, Choice((CHEAP, STRONG), gate)),))], progress=False))
    assert run.strategy == "eval-ladder"  # no policyd validator does agreement
    assert run.mismatches == []
    assert all(r.called[:2] == (CHEAP, STRONG) for r in run.results)
    p = point("agree", run.results, STRONG, cheapest=CHEAP)
    assert p.above_cheap == 1.0  # the agreement call is a call above the cheapest rung
    assert p.strong_share < 1.0  # ...though the strong model rarely answers


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ladder", "cheap-1"], "needs at least two models"),
        (["--ladder", "cheap-1,gpt-9"], "has no model 'gpt-9'"),
        (["--objective", "pgr:2"], "--objective"),
        (["--gate", "vibes"], "unknown gate 'vibes'"),
    ],
)
def test_bad_options_are_clear_errors(capsys, tmp_path, args, message):
    path = write(tmp_path / "r.jsonl", n_train=10, n_test=10)
    code = main(["eval", "--dataset", f"jsonl:{path}", "--out", str(tmp_path / "o"), "--no-plot", *args])
    assert code == 2
    assert message in capsys.readouterr().err


def test_format_gate_runs_on_fail_fast_with_the_regex_validator(capsys, tmp_path):
    path = write(tmp_path / "r.jsonl")
    _, doc = run_eval(capsys, tmp_path, f"jsonl:{path}", "--gate", "format:#### 1", "--no-plot", "--no-routers")
    assert any(n.startswith("operating points ran on: fail-fast") for n in doc["notes"])
    assert doc["engine_vs_direct_mismatches"] == 0
