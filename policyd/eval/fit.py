"""Fitting what a policy ships (gate, threshold) on training items, never on the items it is reported on.

Items are cut into folds (``--split``): the dataset's own train/test split, a seeded
holdout, or k seeded folds (each fold answered with everything fitted on the others).
Within a fold's train items, the gate itself is chosen by an inner cross-validation,
then its threshold is fitted on all of them. When no threshold reaches a PGR target,
the fit falls back to the strong model alone (never "call both on every item", which
costs more than always-strong for the same answers).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from policyd.errors import InvalidArgument
from policyd.eval.gates import Gate, candidate_thresholds, parse_gate
from policyd.eval.metrics import Point, point
from policyd.eval.records import Dataset
from policyd.eval.simulate import ItemResult, Sweep, observe, run_items, sweep_of, sweep_stats

OBJECTIVES = ("pgr:0.5", "pgr:0.8", "pgr:0.95", "cps")
"""Default operating points: the cheapest threshold reaching 50/80/95% of the performance
gap on the training items, and the one with the lowest cost per successful outcome."""


@dataclass(frozen=True)
class Fold:
    """Items answered with what was fitted on ``train``."""

    train: tuple[str, ...]
    test: tuple[str, ...]


@dataclass(frozen=True)
class Choice:
    """What a fold's items are answered with: a ladder and its gate (threshold set)."""

    ladder: tuple[str, ...]
    gate: Gate

    @property
    def threshold(self) -> float | None:
        return self.gate.threshold

    def label(self) -> str:
        if len(self.ladder) == 1:
            return f"{self.ladder[0]} only"
        t = self.threshold
        shown = "off" if t is None else "never" if math.isinf(t) else repr(t)
        return f"{self.gate.spec} >= {shown}" if self.gate.scored else self.gate.spec


def _unit(seed: int, item: str) -> float:
    return int(hashlib.sha256(f"{seed}:{item}".encode()).hexdigest()[:15], 16) / 16**15


def folds(ds: Dataset, items: Sequence[str], k: int = 5, *, split: str = "auto", seed: int = 0) -> list[Fold]:
    """``given`` (the dataset's train/test), ``holdout:F`` (a seeded share F as test) or ``kfold[:K]``.

    ``auto`` is ``given`` when the dataset has both splits, else ``kfold`` with ``k`` folds.
    """
    kind, _, arg = split.partition(":")
    if kind == "auto":
        kind = "given" if ds.has_splits else "kfold"
    keep = set(items)
    if kind == "given":
        if not ds.has_splits:
            raise InvalidArgument("--split", f"{ds.name} has no train/test split (use holdout:F or kfold:K)")
        train = tuple(i for i in ds.items("train") if i in keep)
        test = tuple(i for i in ds.items("test") if i in keep)
        return [Fold(train, test)]
    if kind == "holdout":
        share = _number(arg, "holdout:F with 0 < F < 1")
        if not 0 < share < 1:
            raise InvalidArgument("--split", f"holdout:F needs 0 < F < 1 (got {arg})")
        test_set = {i for i in items if _unit(seed, i) < share}
        return [Fold(tuple(i for i in items if i not in test_set), tuple(i for i in items if i in test_set))]
    if kind == "kfold":
        k = int(_number(arg, "kfold:K")) if arg else k
        if k < 2:
            raise InvalidArgument("--folds", f"must be at least 2 (got {k})")
        bucket = {i: min(k - 1, int(_unit(seed, i) * k)) for i in items}
        return [
            Fold(tuple(i for i in items if bucket[i] != f), tuple(i for i in items if bucket[i] == f)) for f in range(k)
        ]
    raise InvalidArgument("--split", f"{split!r}: expected auto, given, holdout:F or kfold:K")


def _number(text: str, expected: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidArgument("--split", f"expected {expected} (got {text!r})") from None


def parse_objective(text: str) -> tuple[str, float]:
    kind, _, arg = text.partition(":")
    if kind == "cps" and not arg:
        return "cps", 0.0
    if kind in ("pgr", "cost"):
        try:
            target = float(arg)
        except ValueError:
            target = math.nan
        if 0 < target <= 1:
            return kind, target
    raise InvalidArgument("--objective", f"{text!r}: expected pgr:X or cost:X with 0 < X <= 1, or cps")


def baselines(ds: Dataset, items: Sequence[str], ladder: Sequence[str], gate: Gate) -> tuple[Point, Point]:
    weak = point("weak", run_items(ds, items, ladder[:1], gate), ladder[-1])
    strong = point("strong", run_items(ds, items, ladder[-1:], gate), ladder[-1])
    return weak, strong


def pick(scored: Sequence[tuple[object, Point]], objective: str, weak: Point, strong: Point) -> int:
    """Index of the candidate the objective picks: the cheapest reaching the PGR target (else the highest
    PGR, cheapest first); the most accurate within a share of the strong model's cost (``cost:X``, else
    the cheapest); or the lowest cost per success."""
    kind, target = parse_objective(objective)
    order = range(len(scored))
    if kind == "cps":
        return min(order, key=lambda i: (scored[i][1].cost_per_success, scored[i][1].usd_per_query))
    if kind == "cost":
        budget = target * strong.usd_per_query * (1 + 1e-12)
        within = [i for i in order if scored[i][1].usd_per_query <= budget]
        if within:
            return max(within, key=lambda i: (scored[i][1].accuracy, -scored[i][1].usd_per_query))
        return min(order, key=lambda i: scored[i][1].usd_per_query)
    reaching = [i for i in order if scored[i][1].pgr(weak, strong) >= target - 1e-12]
    if reaching:
        return min(reaching, key=lambda i: (scored[i][1].usd_per_query, -scored[i][1].accuracy))
    return max(order, key=lambda i: (scored[i][1].pgr(weak, strong), -scored[i][1].usd_per_query))


def fit_choice(ds: Dataset, train: Sequence[str], ladder: Sequence[str], gate: Gate, objective: str) -> Choice:
    """The (ladder, threshold) the objective picks on ``train``; the strong model alone is always a candidate."""
    ladder = tuple(ladder)
    weak, strong = baselines(ds, train, ladder, gate)
    options: list[Choice] = [Choice(ladder[-1:], parse_gate("none"))]
    if gate.scored is None:
        options.append(Choice(ladder, gate))
    else:
        scores = [gate.score(observe(ds.get(i, m))) for i in train for m in ladder[:-1]]
        options += [Choice(ladder, gate.with_threshold(t)) for t in candidate_thresholds(scores) if t != math.inf]
    sw = sweep_of(ds, train, ladder, gate)
    scored = [(c, sweep_point("fit", sw, c.threshold) if len(c.ladder) > 1 else strong) for c in options]
    return options[pick(scored, objective, weak, strong)]


def sweep_point(label: str, sw: Sweep, threshold: float | None, text: str = "") -> Point:
    """The operating point of a swept ladder at ``threshold``, without running item by item."""
    correct, cost, stop = sweep_stats(sw, threshold)
    n, last = len(cost), sw.cost.shape[1] - 1
    if n == 0:
        return Point(label, 0, 0.0, 0.0, 0.0, 0.0, text)
    return Point(
        label=label,
        n=n,
        accuracy=float(correct.mean()),
        usd_per_query=float(cost.mean()),
        escalation_rate=float((stop > 0).mean()),
        strong_share=float((stop == last).mean()),
        threshold=text,
        above_cheap=1.0 if sw.checks_above_cheap else float((stop > 0).mean()),
        thresholds=(threshold,),
    )


def fit_threshold(ds: Dataset, train: Sequence[str], ladder: Sequence[str], gate: Gate, objective: str) -> float | None:
    """The threshold the objective picks on ``train`` (``inf`` when the strong model alone wins)."""
    choice = fit_choice(ds, train, ladder, gate, objective)
    return math.inf if len(choice.ladder) == 1 and len(ladder) > 1 else choice.threshold


def choose_gate(
    ds: Dataset,
    train: Sequence[str],
    ladder: Sequence[str],
    gates: Sequence[Gate],
    objective: str,
    *,
    k: int = 5,
    seed: int = 0,
) -> Gate:
    """The gate whose threshold, fitted on k-1 inner folds of ``train``, does best on the held-out inner fold."""
    if len(gates) == 1:
        return gates[0]
    inner = folds(ds, train, k, split=f"kfold:{min(k, max(2, len(train) // 2))}", seed=seed + 1)
    weak, strong = baselines(ds, train, ladder, gates[0])
    scored: list[tuple[object, Point]] = []
    for gate in gates:
        results: dict[str, ItemResult] = {}
        for f in inner:
            choice = fit_choice(ds, f.train, ladder, gate, objective)
            results.update((r.item, r) for r in run_items(ds, f.test, choice.ladder, choice.gate))
        scored.append((gate, point(gate.spec, [results[i] for i in train], ladder[-1])))
    kind, target = parse_objective(objective)
    if kind != "pgr":
        return gates[pick(scored, objective, weak, strong)]
    return gates[min(range(len(gates)), key=lambda g: held_out_cost(scored[g][1], target, weak, strong))]


def held_out_cost(p: Point, target: float, weak: Point, strong: Point) -> float:
    """USD per query on held-out items, plus any PGR shortfall charged at twice the random-mix rate.

    A threshold fitted to just reach the target on k-1 folds falls a little short on the
    held-out fold about half the time; charging the shortfall (rather than disqualifying the
    gate) keeps a good signal from losing to one that can only say "always strong".
    """
    gap = strong.usd_per_query - weak.usd_per_query
    pgr = p.pgr(weak, strong)
    shortfall = max(0.0, target - pgr) if math.isfinite(pgr) else 0.0
    return p.usd_per_query + 2 * shortfall * max(gap, 0.0)
