"""The router operating points of one fold: trained and fitted on the fold's train items only.

Three rows per objective: the logistic router alone (strong model above the cut, cheap
model alone below), the kNN router alone (the baseline), and ``route``: the logistic
router in front of the fold's cascade, its cut and the gate's threshold fitted jointly
on train. Thresholds are fitted on out-of-fold scores of the train items, and the shipped
models are the averages of the fold models that produced those scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from policyd.eval.fit import Choice, Fold, baselines, pick
from policyd.eval.gates import Gate, candidate_thresholds, parse_gate
from policyd.eval.metrics import Point
from policyd.eval.records import Dataset
from policyd.eval.router import (
    cross_fitted_router,
    matrix,
    oof_scores,
    post_matrix,
    predict,
    route_thresholds,
    train_post,
)
from policyd.eval.routerfile import Vectorizer
from policyd.eval.runner import RouteSpec, request_text
from policyd.eval.simulate import observe, sweep_of, sweep_stats

NONE = parse_gate("none")


@dataclass
class FoldRouters:
    """A fold's trained routers: the logistic one's file, and every score the fits need."""

    path: Path
    train_log: list[float]
    """Out-of-fold logistic scores of the train items."""
    train_knn: list[float]
    test_log: list[float]
    test_knn: list[float]
    train_post: list[float]
    """Out-of-fold scores of the learned post-generation gate on the train items."""


def label_of(ds: Dataset, item: str, cheap: str, strong: str) -> int:
    """1 when the cheap model fails where the strong one succeeds."""
    return int(not ds.get(item, cheap).correct and ds.get(item, strong).correct)


def train_fold(
    ds: Dataset, fold: Fold, cheap: str, strong: str, path: Path, *, seed: int = 0, vec: Vectorizer | None = None
) -> FoldRouters:
    vec = vec or Vectorizer()
    tr = [request_text(ds, i, cheap) for i in fold.train]
    te = [request_text(ds, i, cheap) for i in fold.test]
    y = [label_of(ds, i, cheap, strong) for i in fold.train]
    meta = {
        "dataset": ds.name,
        "cheap": cheap,
        "strong": strong,
        "label": "cheap model wrong and strong model right",
        "trained_items": len(tr),
        "positives": sum(y),
        "seed": seed,
    }
    router, train_log = cross_fitted_router(vec, tr, y, meta, seed=seed)
    recs = [ds.get(i, cheap) for i in fold.train]
    wrong = [int(not r.correct) for r in recs]
    x_post, stats = post_matrix(vec, tr, [r.answer for r in recs], [observe(r).logprobs for r in recs])
    post, train_post_scores = train_post(x_post, wrong, stats, vec.n_features, seed=seed)
    router = replace(router, post=post)
    router.save(path)
    x_tr, x_te = matrix(vec, tr), matrix(vec, te)
    return FoldRouters(
        path=path,
        train_log=train_log,
        train_knn=oof_scores("knn", x_tr, y, seed=seed),
        test_log=[router.score(t) for t in te],
        test_knn=predict("knn", x_tr, y, x_te),
        train_post=train_post_scores,
    )


def _arrays(ds: Dataset, items: Sequence[str], model: str) -> tuple[Any, Any]:
    import numpy as np

    recs = [ds.get(i, model) for i in items]
    return np.array([r.correct for r in recs], dtype=bool), np.array([r.cost_usd for r in recs])


def routed_point(
    mask: Any, below: tuple[Any, Any, Any], strong: tuple[Any, Any], last: int = 0, extra_above: bool = False
) -> Point:
    """The operating point of routing ``mask`` straight to the strong model and the rest down ``below``."""
    import numpy as np

    correct, cost, stop = below
    s_correct, s_cost = strong
    n = len(mask)
    acc = np.where(mask, s_correct, correct)
    usd = np.where(mask, s_cost, cost)
    return Point(
        label="fit",
        n=n,
        accuracy=float(acc.mean()) if n else 0.0,
        usd_per_query=float(usd.mean()) if n else 0.0,
        escalation_rate=float((~mask & (stop > 0)).mean()) if n else 0.0,
        strong_share=float((mask | ((stop == last) & (last > 0))).mean()) if n else 0.0,
        above_cheap=float((mask | (stop > 0) | extra_above).mean()) if n else 0.0,
    )


def fit_router_cut(
    ds: Dataset, train: Sequence[str], scores: Sequence[float], cheap: str, strong: str, objective: str
) -> float:
    """The cut a router alone gets on train: strong model at or above it, the cheap model alone below."""
    import numpy as np

    s = np.array(scores)
    c_correct, c_cost = _arrays(ds, train, cheap)
    st = _arrays(ds, train, strong)
    below = (c_correct, c_cost, np.zeros(len(train), dtype=int))
    weak, strong_pt = baselines(ds, train, (cheap, strong), NONE)
    cuts = route_thresholds(scores)
    scored = [(t, routed_point(s >= t, below, st)) for t in cuts]
    return cuts[pick(scored, objective, weak, strong_pt)]


def fit_route(
    ds: Dataset, train: Sequence[str], scores: Sequence[float], ladder: Sequence[str], gate: Gate, objective: str
) -> tuple[float, Choice]:
    """Router cut and gate threshold fitted jointly on train (out-of-fold router scores)."""
    import numpy as np

    ladder = tuple(ladder)
    s = np.array(scores)
    st = _arrays(ds, train, ladder[-1])
    sw = sweep_of(ds, train, ladder, gate)
    weak, strong_pt = baselines(ds, train, ladder, gate)
    gate_ts: list[float | None] = [None]
    if gate.scored:
        obs = [gate.score(observe(ds.get(i, m))) for i in train for m in ladder[:-1]]
        gate_ts = [t for t in candidate_thresholds(obs, 30) if t != math.inf]
    options: list[tuple[float, float | None]] = []
    scored: list[tuple[object, Point]] = []
    for t_gate in gate_ts:
        below = sweep_stats(sw, t_gate)
        for cut in route_thresholds(scores):
            options.append((cut, t_gate))
            scored.append((cut, routed_point(s >= cut, below, st, len(ladder) - 1, sw.checks_above_cheap)))
    cut, t_gate = options[pick(scored, objective, weak, strong_pt)]
    return cut, Choice(ladder, gate.with_threshold(t_gate))


def fit_learned(
    ds: Dataset,
    train: Sequence[str],
    pre: Sequence[float],
    post: Sequence[float],
    cheap: str,
    strong: str,
    objective: str,
) -> tuple[float, float]:
    """Router cut and learned-gate cut fitted jointly on train (both on out-of-fold scores)."""
    import numpy as np

    s, q = np.array(pre), np.array(post)
    c_correct, c_cost = _arrays(ds, train, cheap)
    st = _arrays(ds, train, strong)
    weak, strong_pt = baselines(ds, train, (cheap, strong), NONE)
    options: list[tuple[float, float]] = []
    scored: list[tuple[object, Point]] = []
    for post_cut in route_thresholds(post):
        up = q >= post_cut
        below = (np.where(up, st[0], c_correct), c_cost + np.where(up, st[1], 0.0), up.astype(int))
        for cut in route_thresholds(pre):
            options.append((cut, post_cut))
            scored.append((cut, routed_point(s >= cut, below, st, 1)))
    return options[pick(scored, objective, weak, strong_pt)]


def route_specs(
    ds: Dataset, fold: Fold, routers: FoldRouters, ladder: Sequence[str], gate: Gate | None, objective: str
) -> tuple[RouteSpec, RouteSpec | None, float, RouteSpec]:
    """(router alone, router + cascade or None without a gate, kNN cut, router + learned gate)."""
    cheap, strong = ladder[0], ladder[-1]
    cut = fit_router_cut(ds, fold.train, routers.train_log, cheap, strong, objective)
    alone = RouteSpec(routers.path, cut, strong, Choice((cheap,), NONE))
    knn_cut = fit_router_cut(ds, fold.train, routers.train_knn, cheap, strong, objective)
    combined = None
    if gate is not None:
        r_cut, choice = fit_route(ds, fold.train, routers.train_log, ladder, gate, objective)
        combined = RouteSpec(routers.path, r_cut, strong, choice)
    l_cut, post_cut = fit_learned(ds, fold.train, routers.train_log, routers.train_post, cheap, strong, objective)
    learned = RouteSpec(routers.path, l_cut, strong, Choice((cheap, strong), NONE), post_cut)
    return alone, combined, knn_cut, learned
