"""Fitting a gate's threshold on training items, never on the items it is reported on.

With a train/test split the threshold is fitted on train and applied to test. Without
one, the items are cut into k folds: each fold is answered with a threshold fitted on
the other k-1, so every reported answer comes from a threshold that never saw it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from policyd.errors import InvalidArgument
from policyd.eval.gates import Gate, candidate_thresholds
from policyd.eval.metrics import Point, point
from policyd.eval.records import Dataset
from policyd.eval.simulate import observe, run_items

OBJECTIVES = ("pgr:0.5", "pgr:0.8", "pgr:0.95", "cps")
"""Default operating points: the cheapest threshold reaching 50/80/95% of the performance
gap on the training items, and the one with the lowest cost per successful outcome."""


@dataclass(frozen=True)
class Fold:
    """Items answered with a threshold fitted on ``train``."""

    train: tuple[str, ...]
    test: tuple[str, ...]


def folds(ds: Dataset, items: Sequence[str], k: int) -> list[Fold]:
    """The train/test split when the dataset has one, else k folds by a stable hash of the item id."""
    if ds.has_splits:
        keep = set(items)
        return [
            Fold(
                tuple(i for i in ds.items("train") if i in keep),
                tuple(i for i in ds.items("test") if i in keep),
            )
        ]
    if k < 2:
        raise InvalidArgument("--folds", f"must be at least 2 for a dataset without a split (got {k})")
    bucket = {i: int(hashlib.sha256(i.encode()).hexdigest(), 16) % k for i in items}
    return [
        Fold(tuple(i for i in items if bucket[i] != f), tuple(i for i in items if bucket[i] == f)) for f in range(k)
    ]


def parse_objective(text: str) -> tuple[str, float]:
    kind, _, arg = text.partition(":")
    if kind == "cps" and not arg:
        return "cps", 0.0
    if kind == "pgr":
        try:
            target = float(arg)
        except ValueError:
            target = math.nan
        if 0 < target <= 1:
            return "pgr", target
    raise InvalidArgument("--objective", f"{text!r}: expected pgr:X with 0 < X <= 1, or cps")


def fit_threshold(ds: Dataset, train: Sequence[str], ladder: Sequence[str], gate: Gate, objective: str) -> float | None:
    """The threshold the objective picks on ``train`` (None when the gate has no scored part)."""
    if gate.scored is None:
        return None
    kind, target = parse_objective(objective)
    scores = [gate.score(observe(ds.get(i, m))) for i in train for m in ladder[:-1]]
    weak = point("weak", run_items(ds, train, ladder[:1], gate), ladder[-1])
    strong = point("strong", run_items(ds, train, ladder[-1:], gate), ladder[-1])
    scored: list[tuple[float | None, Point]] = []
    for t in candidate_thresholds(scores):
        scored.append((t, point("fit", run_items(ds, train, ladder, gate.with_threshold(t)), ladder[-1])))
    if kind == "cps":
        return min(scored, key=lambda tp: (tp[1].cost_per_success, tp[1].usd_per_query))[0]
    reaching = [(t, p) for t, p in scored if p.pgr(weak, strong) >= target]
    if reaching:
        return min(reaching, key=lambda tp: tp[1].usd_per_query)[0]
    return max(scored, key=lambda tp: (tp[1].pgr(weak, strong), -tp[1].usd_per_query))[0]
