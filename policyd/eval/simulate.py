"""The ladder computed straight from the records, without the engine.

Fitting a threshold tries dozens of candidates on the train split, and the frontier
sweeps them on test; both use this direct computation. The reported operating points
come from the real engine (``policyd.eval.runner``), and the runner checks that the two
agree item by item, so the shortcut is verified on every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
    checks = 0
    rec: Record | None = None
    for i, model in enumerate(ladder):
        rec = ds.get(item, model)
        cost += rec.cost_usd
        called.append(model)
        if i == len(ladder) - 1:
            break
        agreeing = None
        if gate.agree_with:
            other = ds.get(item, gate.agree_with)
            cost += other.cost_usd
            checks += 1
            agreeing = observe(other)
        if gate.passes(observe(rec), agreeing):
            break
    assert rec is not None
    return ItemResult(item, rec.correct, cost, tuple(called), checks)


def run_items(ds: Dataset, items: Iterable[str], ladder: Sequence[str], gate: Gate) -> list[ItemResult]:
    return [run_ladder(ds, item, ladder, gate) for item in items]
