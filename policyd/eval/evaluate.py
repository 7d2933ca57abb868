"""One evaluation: fit thresholds without the reported items, run the engine, compute the figures."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from policyd.errors import InvalidArgument
from policyd.eval import metrics
from policyd.eval.fit import fit_threshold, folds, parse_objective
from policyd.eval.gates import Gate, candidate_thresholds
from policyd.eval.metrics import point
from policyd.eval.records import Dataset
from policyd.eval.report import Report, label_threshold
from policyd.eval.runner import Arm, run_arms
from policyd.eval.simulate import observe, run_items


def check_ladder(ds: Dataset, ladder: Sequence[str], gate: Gate) -> None:
    if len(ladder) < 2:
        raise InvalidArgument("--ladder", "needs at least two models, cheapest first")
    for model in [*ladder, *([gate.agree_with] if gate.agree_with else [])]:
        if model not in ds.prices:
            raise InvalidArgument("--ladder", f"{ds.name} has no model {model!r} (known: {', '.join(ds.models)})")


def evaluate(
    ds: Dataset,
    ladder: Sequence[str],
    gate: Gate,
    objectives: Sequence[str],
    *,
    k: int = 5,
    limit: int | None = None,
    concurrency: int = 64,
    progress: bool = True,
) -> Report:
    ladder = tuple(ladder)
    check_ladder(ds, ladder, gate)
    for objective in objectives:
        parse_objective(objective)
    needed = [*ladder, *([gate.agree_with] if gate.agree_with else [])]
    items = ds.complete_items(needed)
    if limit:
        items = items[:limit]
    parts = folds(ds, items, k)
    reported = [i for f in parts for i in f.test]
    if not reported or not all(f.train for f in parts):
        raise InvalidArgument("--limit", f"{ds.name}: too few items to fit on one part and report on another")
    arms = []
    for objective in objectives if gate.scored else objectives[:1]:
        groups = tuple((f.test, fit_threshold(ds, f.train, ladder, gate, objective)) for f in parts)
        label = f"{gate.spec} {objective}" if gate.scored else f"gate {gate.spec}"
        arms.append(Arm(label, ladder, gate, groups))
    runs = asyncio.run(run_arms(ds, arms, concurrency=concurrency, progress=progress))

    strong_model = ladder[-1]
    weak_items = run_items(ds, reported, ladder[:1], gate)
    strong_items = run_items(ds, reported, ladder[-1:], gate)
    weak = point(f"always {ladder[0]}", weak_items, strong_model)
    strong = point(f"always {strong_model}", strong_items, strong_model)
    policies = [
        point(run.arm.label, run.results, strong_model, label_threshold([t for _, t in run.arm.groups])) for run in runs
    ]
    mixes = [metrics.random_mix(weak, strong, p.strong_share) for p in policies]
    scores = [gate.score(observe(ds.get(i, m))) for i in reported for m in ladder[:-1]]
    sweep = [
        point(f"t={t}", run_items(ds, reported, ladder, gate.with_threshold(t)), strong_model)
        for t in (candidate_thresholds(scores, 40) if gate.scored else [None])
    ]
    curve = metrics.curve(sweep, weak, strong)
    fitting = (
        "train split -> test split"
        if ds.has_splits
        else f"{len(parts)}-fold cross-validation (each fold answered with a threshold fitted on the others)"
    )
    return Report(
        dataset=ds.name,
        ladder=ladder,
        gate=gate.spec,
        n_items=len(reported),
        weak=weak,
        strong=strong,
        oracle=metrics.oracle(weak_items, strong_items, strong_model),
        policies=policies,
        mixes=mixes,
        sweep=sweep,
        curve=curve,
        cpt50=metrics.cpt(curve, 0.5),
        cpt80=metrics.cpt(curve, 0.8),
        apgr=metrics.apgr(curve),
        mismatches=sum(len(r.mismatches) for r in runs),
        notes=(*ds.notes, f"operating points ran on: {', '.join(sorted({r.strategy for r in runs}))}"),
        prices={
            m: {
                "input_usd_per_mtok": p.input_usd_per_mtok,
                "output_usd_per_mtok": p.output_usd_per_mtok,
                "source": p.source,
            }
            for m, p in ds.prices.items()
            if m in needed
        },
        fitting=fitting if gate.scored else "none (the gate has no threshold)",
    )
