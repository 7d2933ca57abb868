"""Fitting on train only: splits, the strong-alone fallback, the gate chosen by cross-validation, CPT's count."""

from __future__ import annotations

import pytest

from policyd.cli.main import main
from policyd.eval.fit import choose_gate, fit_choice, folds
from policyd.eval.gates import parse_gate
from policyd.eval.metrics import point
from policyd.eval.records import Dataset, Record, fit_prices, write_jsonl
from policyd.eval.simulate import run_items
from policyd.eval.sources import load_dataset
from tests.eval.synthetic import CHEAP, STRONG, records, write


def test_splits_are_seeded_disjoint_and_cover_the_items(tmp_path):
    ds = load_dataset(f"jsonl:{write(tmp_path / 'r.jsonl', split=False)}")
    items = ds.items()
    [a] = folds(ds, items, split="holdout:0.3", seed=1)
    [b] = folds(ds, items, split="holdout:0.3", seed=1)
    [c] = folds(ds, items, split="holdout:0.3", seed=2)
    assert a == b and a != c
    assert set(a.train).isdisjoint(a.test) and sorted([*a.train, *a.test]) == sorted(items)
    assert 0.2 < len(a.test) / len(items) < 0.4
    parts = folds(ds, items, split="kfold:3", seed=4)
    assert sorted(i for f in parts for i in f.test) == sorted(items)
    with pytest.raises(Exception, match="no train/test split"):
        folds(ds, items, split="given")


def test_an_item_in_two_splits_is_refused(tmp_path):
    recs = records(n_train=5, n_test=5)
    moved = [
        r if not (r.item == "0" and r.model == STRONG) else Record(**{**r.to_json(), "split": "test"}) for r in recs
    ]
    write_jsonl(moved, tmp_path / "r.jsonl")
    with pytest.raises(Exception, match="item '0' is in both"):
        load_dataset(f"jsonl:{tmp_path / 'r.jsonl'}")


def test_an_unreachable_target_falls_back_to_the_strong_model_alone(tmp_path):
    ds = load_dataset(f"jsonl:{write(tmp_path / 'r.jsonl')}")
    train = ds.items("train")
    # The length gate carries no information here: no threshold reaches 95% of the gap below
    # the strong model's own cost, so the fit ships the strong model alone, not "call both".
    choice = fit_choice(ds, train, (CHEAP, STRONG), parse_gate("length"), "pgr:0.95")
    assert choice.ladder == (STRONG,)
    strong = point("s", run_items(ds, train, (STRONG,), parse_gate("none")), STRONG)
    both = point("b", run_items(ds, train, (CHEAP, STRONG), parse_gate("none")), STRONG)
    assert strong.usd_per_query < both.usd_per_query


def test_the_gate_is_chosen_by_cross_validation_on_train_only(tmp_path):
    ds = load_dataset(f"jsonl:{write(tmp_path / 'r.jsonl')}")
    gates = [parse_gate("length"), parse_gate("logprob")]
    # The logprob confidence predicts the cheap model's correctness; the length does not.
    assert choose_gate(ds, ds.items("train"), (CHEAP, STRONG), gates, "pgr:0.8").spec == "logprob"


def three_rungs() -> Dataset:
    out = []
    for i in range(40):
        for model, right, cost, conf in (
            ("a", i % 2 == 0, 1e-6, -0.1 if i % 2 == 0 else -3.0),
            ("b", i % 4 != 1, 1e-5, -0.1 if i % 4 != 1 else -3.0),
            ("c", True, 1e-4, 0.0),
        ):
            out.append(Record("three", "", str(i), model, "x", right, cost, signals={"logprob_conf": conf}))
    return Dataset("three", out, fit_prices(out, "t"), ladder=("a", "b", "c"))


def test_cpt_counts_every_call_above_the_cheapest_rung():
    ds = three_rungs()
    results = run_items(ds, ds.items(), ("a", "b", "c"), parse_gate("logprob").with_threshold(-1.0))
    p = point("ladder", results, "c", cheapest="a")
    # Half the items go past the cheapest rung, though only a quarter reach the strongest.
    assert p.above_cheap == pytest.approx(0.5)
    assert p.strong_share == pytest.approx(0.25)


def test_a_logprob_gate_on_data_without_log_probabilities_is_an_error(tmp_path, capsys):
    recs = [Record(**{**r.to_json(), "signals": {}}) for r in records(n_train=20, n_test=20)]
    write_jsonl(recs, tmp_path / "r.jsonl")
    code = main(
        ["eval", "--dataset", f"jsonl:{tmp_path / 'r.jsonl'}", "--gate", "logprob", "--out", str(tmp_path / "o")]
    )
    assert code == 2
    assert "records no log-probabilities" in capsys.readouterr().err
