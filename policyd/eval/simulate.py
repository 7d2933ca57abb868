"""The ladder computed straight from the records, without the engine.

Fitting a threshold tries dozens of candidates on the train split, and the frontier
sweeps them on test; both use this direct computation. The reported operating points
come from the real engine (``policyd.eval.runner``), and the runner checks that the two
agree item by item, so the shortcut is verified on every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from policyd.eval.gates import Gate, Observation
from policyd.eval.records import Dataset, Record


@dataclass(frozen=True)
class ItemResult:
    """What one item cost and whether its final answer was right."""

    item: str
    correct: bool
    cost_usd: float
    models: tuple[str, ...]
    """Answering models called, in order (validator calls not included)."""
    validator_calls: int = 0
    called: tuple[str, ...] = ()
    """Every model called, in order, agreement checks included."""

    @property
    def escalated(self) -> bool:
        return len(self.models) > 1


def observe(rec: Record) -> Observation:
    """What the replay provider returns for a record, as a gate sees it."""
    conf = rec.signals.get("logprob_conf")
    return Observation(rec.answer, None if conf is None else (conf,))


def run_ladder(ds: Dataset, item: str, ladder: Sequence[str], gate: Gate) -> ItemResult:
    cost = 0.0
    called: list[str] = []
    every: list[str] = []
    checks = 0
    rec: Record | None = None
    for i, model in enumerate(ladder):
        rec = ds.get(item, model)
        cost += rec.cost_usd
        called.append(model)
        every.append(model)
        if i == len(ladder) - 1:
            break
        agreeing = None
        if gate.agree_with:
            other = ds.get(item, gate.agree_with)
            cost += other.cost_usd
            checks += 1
            every.append(gate.agree_with)
            agreeing = observe(other)
        if gate.passes(observe(rec), agreeing):
            break
    assert rec is not None
    return ItemResult(item, rec.correct, cost, tuple(called), checks, tuple(every))


def run_route(
    ds: Dataset, item: str, score: float, threshold: float, strong: str, ladder: Sequence[str], gate: Gate
) -> ItemResult:
    """The ``route`` strategy: straight to ``strong`` when the score reaches the threshold, else the ladder."""
    if score >= threshold:
        return run_ladder(ds, item, (strong,), gate)
    return run_ladder(ds, item, ladder, gate)


def run_items(ds: Dataset, items: Iterable[str], ladder: Sequence[str], gate: Gate) -> list[ItemResult]:
    return [run_ladder(ds, item, ladder, gate) for item in items]


@dataclass(frozen=True)
class Sweep:
    """Per-item arrays of one ladder and gate, for trying many thresholds at numpy speed."""

    passed: Any
    """n x (rungs-1): the fixed checks pass."""
    score: Any
    """n x (rungs-1): the scored part's score."""
    cost: Any
    """n x rungs: cumulative USD when the ladder stops at that rung (agreement checks included)."""
    correct: Any
    """n x rungs: that rung's answer is right."""
    checks_above_cheap: bool
    """The gate calls a model other than the cheapest on every visited rung."""


def sweep_of(ds: Dataset, items: Sequence[str], ladder: Sequence[str], gate: Gate) -> Sweep:
    import numpy as np

    n, last = len(items), len(ladder) - 1
    passed = np.zeros((n, max(last, 1)), dtype=bool)
    score = np.zeros((n, max(last, 1)))
    cost = np.zeros((n, len(ladder)))
    correct = np.zeros((n, len(ladder)), dtype=bool)
    for r, item in enumerate(items):
        total = 0.0
        for i, model in enumerate(ladder):
            rec = ds.get(item, model)
            total += rec.cost_usd
            correct[r, i] = rec.correct
            if i < last:
                agreeing = None
                if gate.agree_with:
                    other = ds.get(item, gate.agree_with)
                    total += other.cost_usd
                    agreeing = observe(other)
                obs = observe(rec)
                passed[r, i] = not gate.is_none and gate.fixed_pass(obs, agreeing)
                score[r, i] = gate.score(obs)
            cost[r, i] = total
    above = bool(gate.agree_with) and gate.agree_with != ladder[0]
    return Sweep(passed, score, cost, correct, above)


def sweep_stats(sw: Sweep, threshold: float | None) -> tuple[Any, Any, Any]:
    """(correct, cost, stopping rung) per item at ``threshold`` (None: the fixed checks alone decide)."""
    import numpy as np

    last = sw.cost.shape[1] - 1
    rows = np.arange(sw.cost.shape[0])
    if last == 0:
        stop = np.zeros(len(rows), dtype=int)
    else:
        ok = sw.passed if threshold is None else sw.passed & (sw.score >= threshold)
        stop = np.where(ok.any(axis=1), ok.argmax(axis=1), last)
    return sw.correct[rows, stop], sw.cost[rows, stop], stop
