"""Figures of an operating point and of a gate's whole curve, as RouteLLM defines them.

* **PGR** (performance gap recovered): ``(acc - acc_weak) / (acc_strong - acc_weak)``.
* **CPT(x%)** (call-performance threshold): the smallest share of queries that call any
  model above the cheapest rung (middle rungs and agreement checks included) at which the
  curve reaches a PGR of x%, interpolated linearly.
* **APGR**: the area under PGR as a function of that share, over [0, 1] (trapezoids
  through the curve's points, anchored at the weak model alone and the strong model alone).
* **Cost per successful outcome**: all USD spent divided by the number of right answers.
* **95% intervals**: percentile bootstrap over the reported items (paired: every row is
  resampled with the same items, so PGR's interval includes the baselines' noise).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from policyd.eval.simulate import ItemResult


@dataclass(frozen=True)
class Point:
    """One operating point: a policy (or a baseline) measured on a set of items."""

    label: str
    n: int
    accuracy: float
    usd_per_query: float
    escalation_rate: float
    strong_share: float
    threshold: str = ""
    above_cheap: float = 0.0
    """Share of queries that called any model other than the cheapest rung (CPT/APGR count these)."""
    thresholds: tuple[float | None, ...] = ()
    """The exact fitted thresholds, one per fold (None: pass everything)."""
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    """95% bootstrap intervals: accuracy, usd_per_query, cost_per_success, pgr."""
    engine: bool = False
    """Whether this row ran through the real engine (else: computed from the records directly)."""

    @property
    def cost_per_success(self) -> float:
        correct = self.accuracy * self.n
        return self.usd_per_query * self.n / correct if correct else math.inf

    def pgr(self, weak: Point, strong: Point) -> float:
        gap = strong.accuracy - weak.accuracy
        return (self.accuracy - weak.accuracy) / gap if gap else math.nan

    def to_json(self, weak: Point, strong: Point) -> dict[str, Any]:
        out = asdict(self)
        out["cost_per_success"] = _finite(self.cost_per_success)
        out["pgr"] = _finite(self.pgr(weak, strong))
        out["thresholds"] = [_exact(t) for t in self.thresholds]
        out["ci"] = {k: [_finite(lo), _finite(hi)] for k, (lo, hi) in self.ci.items()}
        return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _exact(t: float | None) -> float | str | None:
    """A threshold as JSON: the float itself (full precision), or "never" for +inf."""
    if t is None:
        return None
    return t if math.isfinite(t) else ("never" if t > 0 else "always")


def point(
    label: str, results: Sequence[ItemResult], strong: str, threshold: str = "", *, cheapest: str | None = None
) -> Point:
    n = len(results)
    if n == 0:
        return Point(label, 0, 0.0, 0.0, 0.0, 0.0, threshold)
    return Point(
        label=label,
        n=n,
        accuracy=sum(r.correct for r in results) / n,
        usd_per_query=sum(r.cost_usd for r in results) / n,
        escalation_rate=sum(r.escalated for r in results) / n,
        strong_share=sum(strong in r.models for r in results) / n,
        threshold=threshold,
        above_cheap=sum(any(m != cheapest for m in (r.called or r.models)) for r in results) / n
        if cheapest
        else sum(strong in r.models for r in results) / n,
    )


def random_mix(weak: Point, strong: Point, share: float) -> Point:
    """The expected figures of routing a random ``share`` of queries to the strong model."""
    return Point(
        label=f"random mix ({share:.0%} strong)",
        n=weak.n,
        accuracy=(1 - share) * weak.accuracy + share * strong.accuracy,
        usd_per_query=(1 - share) * weak.usd_per_query + share * strong.usd_per_query,
        escalation_rate=0.0,  # a router: the strong model answers alone, nothing escalates
        strong_share=share,
        above_cheap=share,
    )


def oracle(weak: Sequence[ItemResult], strong: Sequence[ItemResult], strong_model: str) -> Point:
    """Routes each query to the weak model when it is right, else to the strong one."""
    picked = [w if w.correct or not s.correct else s for w, s in zip(weak, strong, strict=True)]
    return point("oracle", picked, strong_model)


def curve(points: Sequence[Point], weak: Point, strong: Point) -> list[tuple[float, float]]:
    """(strong share, PGR) pairs sorted by share, anchored at (0, 0) and (1, 1)."""
    pairs = [(p.above_cheap, p.pgr(weak, strong)) for p in points if math.isfinite(p.pgr(weak, strong))]
    pairs += [(0.0, 0.0), (1.0, 1.0)]
    best: dict[float, float] = {}
    for share, pgr in pairs:
        best[share] = max(pgr, best.get(share, -math.inf))
    return sorted(best.items())


def apgr(pairs: Sequence[tuple[float, float]]) -> float:
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in itertools.pairwise(pairs))


def cpt(pairs: Sequence[tuple[float, float]], target: float) -> float:
    """Smallest strong share reaching ``target`` PGR along the curve (linear between points)."""
    for (x0, y0), (x1, y1) in itertools.pairwise(pairs):
        if y0 >= target:
            return x0
        if y1 >= target:
            return x0 + (x1 - x0) * (target - y0) / (y1 - y0)
    return math.nan


def bootstrap(
    rows: Sequence[tuple[Point, Sequence[ItemResult]]],
    weak: Sequence[ItemResult],
    strong: Sequence[ItemResult],
    *,
    seed: int = 0,
    resamples: int = 1000,
) -> list[Point]:
    """``rows`` with 95% percentile-bootstrap intervals; every row's results are in the same item order."""
    import numpy as np

    n = len(weak)
    if n == 0:
        return [p for p, _ in rows]
    correct = np.array([[r.correct for r in res] for _, res in rows], dtype=float)
    cost = np.array([[r.cost_usd for r in res] for _, res in rows], dtype=float)
    base = np.array([[r.correct for r in weak], [r.correct for r in strong]], dtype=float)
    rng = np.random.default_rng(seed)
    accs, costs, bases = [], [], []
    for start in range(0, resamples, 100):
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=min(100, resamples - start)).T.astype(float)
        accs.append(correct @ w / n)
        costs.append(cost @ w / n)
        bases.append(base @ w / n)
    acc, usd, bs = np.hstack(accs), np.hstack(costs), np.hstack(bases)
    gap = bs[1] - bs[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        pgr = np.where(gap != 0, (acc - bs[0]) / np.where(gap != 0, gap, 1), np.nan)
        cps = np.where(acc > 0, usd / np.where(acc > 0, acc, 1), np.inf)
    out = []
    for k, (p, _) in enumerate(rows):
        ci = {
            "accuracy": _interval(acc[k]),
            "usd_per_query": _interval(usd[k]),
            "cost_per_success": _interval(cps[k]),
            "pgr": _interval(pgr[k]),
        }
        out.append(replace(p, ci=ci))
    return out


def _interval(values: Any) -> tuple[float, float]:
    import numpy as np

    finite = values[np.isfinite(values)]
    if len(finite) < len(values) * 0.5:
        return (math.nan, math.nan)
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return (float(lo), float(hi))
