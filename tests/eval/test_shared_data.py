"""Leak-freedom and engine fidelity on the real shared research data (skipped where it is absent).

Set ``POLICYD_EVAL_FULL=1`` to run the engine over every item of every dataset (minutes);
by default each dataset runs on its first 400 items.
"""

from __future__ import annotations

import os
import random
from dataclasses import replace

import pytest

from policyd.eval.evaluate import Settings, evaluate, resolve_gates
from policyd.eval.fit import choose_gate, fit_choice, folds
from policyd.eval.records import Dataset
from policyd.eval.routed import fit_router_cut, train_fold
from policyd.eval.sources import DATASETS, data_dir, load_dataset

pytestmark = pytest.mark.skipif(not data_dir().is_dir(), reason="the shared research data is not present")
FULL = os.environ.get("POLICYD_EVAL_FULL") == "1"
_CACHE: dict[str, Dataset] = {}


def dataset(name: str) -> Dataset:
    if name not in _CACHE:
        _CACHE[name] = load_dataset(name)
    return _CACHE[name]


def split_of(ds: Dataset) -> str:
    return "given" if ds.has_splits else "holdout:0.5"


@pytest.mark.parametrize("name", list(DATASETS))
def test_train_and_test_item_ids_are_disjoint(name):
    ds = dataset(name)
    items = ds.complete_items(ds.ladder)
    assert len(items) > 50
    if ds.has_splits:
        train, test = set(ds.items("train")), set(ds.items("test"))
        assert train and test and train.isdisjoint(test)
        # The id carries its split, so no loader can merge a train item with a test item.
        assert all(r.item.startswith(f"{r.split}/") for r in ds.records)
    for split in ("auto", "holdout:0.3", "kfold:4"):
        parts = folds(ds, items, split=split, seed=11)
        for f in parts:
            assert set(f.train).isdisjoint(f.test)
        assert sorted(i for f in parts for i in f.test) == sorted(set(i for f in parts for i in f.test))


def shuffled_test(ds: Dataset, test: set[str], seed: int) -> Dataset:
    """The same dataset with every test item's correctness and signals shuffled among test items."""
    rng = random.Random(seed)
    by_model: dict[str, list[int]] = {}
    for n, rec in enumerate(ds.records):
        if rec.item in test:
            by_model.setdefault(rec.model, []).append(n)
    records = list(ds.records)
    for slots in by_model.values():
        donors = [ds.records[n] for n in slots]
        rng.shuffle(donors)
        for n, donor in zip(slots, donors, strict=True):
            records[n] = replace(records[n], correct=donor.correct, signals=dict(donor.signals))
    return Dataset(ds.name, records, ds.prices, ladder=ds.ladder, gate=ds.gate, notes=ds.notes)


@pytest.mark.parametrize("name", list(DATASETS))
def test_shuffling_test_labels_and_confidences_leaves_every_fit_unchanged(name, tmp_path):
    ds = dataset(name)
    ladder = ds.ladder
    gates = resolve_gates(ds, ladder, "auto")
    [fold] = folds(ds, ds.complete_items(ladder)[:2000], split=split_of(ds), seed=0)
    other = shuffled_test(ds, set(fold.test), seed=5)
    assert any(ds.get(i, ladder[0]).correct != other.get(i, ladder[0]).correct for i in fold.test)
    for objective in ("pgr:0.5", "pgr:0.8", "cps"):
        if gates:
            gate = choose_gate(ds, fold.train, ladder, gates, objective)
            assert gate == choose_gate(other, fold.train, ladder, gates, objective)
            assert fit_choice(ds, fold.train, ladder, gate, objective) == fit_choice(
                other, fold.train, ladder, gate, objective
            )
    a = train_fold(ds, fold, ladder[0], ladder[-1], tmp_path / "a.json")
    b = train_fold(other, fold, ladder[0], ladder[-1], tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert a.train_log == b.train_log and a.train_knn == b.train_knn
    cut = fit_router_cut(ds, fold.train, a.train_log, ladder[0], ladder[-1], "pgr:0.5")
    assert cut == fit_router_cut(other, fold.train, b.train_log, ladder[0], ladder[-1], "pgr:0.5")


@pytest.mark.timeout(3600 if FULL else 300)
@pytest.mark.parametrize("name", list(DATASETS))
def test_engine_and_direct_computation_agree_item_by_item(name, tmp_path):
    ds = dataset(name)
    settings = Settings(
        objectives=("pgr:0.5", "cps"),
        split=split_of(ds),
        limit=None if FULL else 400,
        progress=False,
        router_dir=tmp_path,
        resamples=100,
    )
    report = evaluate(ds, ds.ladder, "auto", settings)
    assert report.mismatches == 0
    engine_rows = [r for r in report.rows if r.point.engine]
    assert engine_rows and all(r.point.n == report.n_items for r in engine_rows)
