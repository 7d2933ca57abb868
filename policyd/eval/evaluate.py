"""One evaluation: fit gates, thresholds and routers on train only, run the engine on test, compute the figures."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from policyd.errors import InvalidArgument
from policyd.eval import metrics
from policyd.eval.fit import OBJECTIVES, Fold, choose_gate, fit_choice, folds, parse_objective
from policyd.eval.gates import Gate, auto_gates, candidate_thresholds, check_applicable, parse_gate
from policyd.eval.metrics import Point, point
from policyd.eval.records import Dataset
from policyd.eval.report import Curve, Report, Row, label_thresholds
from policyd.eval.runner import Arm, run_arms
from policyd.eval.simulate import ItemResult, observe, run_items, run_route, sweep_of


@dataclass(frozen=True)
class Settings:
    objectives: tuple[str, ...] = OBJECTIVES
    k: int = 5
    split: str = "auto"
    seed: int = 0
    limit: int | None = None
    concurrency: int = 64
    progress: bool = True
    routers: bool = True
    """Train and report the router rows (needs scikit-learn)."""
    router_dir: Path | None = None
    """Where each fold's router file is written (default: a temporary folder)."""
    resamples: int = 1000


def check_ladder(ds: Dataset, ladder: Sequence[str], gates: Sequence[Gate]) -> None:
    if len(ladder) < 2:
        raise InvalidArgument("--ladder", "needs at least two models, cheapest first")
    for model in [*ladder, *(g.agree_with for g in gates if g.agree_with)]:
        if model not in ds.prices:
            raise InvalidArgument("--ladder", f"{ds.name} has no model {model!r} (known: {', '.join(ds.models)})")


def resolve_gates(ds: Dataset, ladder: Sequence[str], spec: str) -> list[Gate]:
    """``auto``: the candidates the data can feed; else the one gate, which must read recorded signals."""
    gated = list(ladder[:-1])
    has_logprobs = ds.has_signal("logprob_conf", gated)
    has_answers = ds.has_answers(gated)
    if spec == "auto":
        annotated = any("<<" in r.answer for r in ds.records if r.model == ladder[0])
        return auto_gates(has_logprobs=has_logprobs, has_answers=has_answers, has_annotations=annotated)
    gate = parse_gate(spec)
    if not gate.is_none:
        check_applicable(gate, has_logprobs=has_logprobs, has_answers=has_answers)
    return [gate]


def evaluate(ds: Dataset, ladder: Sequence[str], gate_spec: str, settings: Settings = Settings()) -> Report:
    ladder = tuple(ladder)
    gates = resolve_gates(ds, ladder, gate_spec)
    check_ladder(ds, ladder, gates)
    for objective in settings.objectives:
        parse_objective(objective)
    needed = [*ladder, *(g.agree_with for g in gates if g.agree_with)]
    items = limited(ds, ds.complete_items(needed), settings.limit)
    parts = folds(ds, items, settings.k, split=settings.split, seed=settings.seed)
    reported = [i for f in parts for i in f.test]
    if not reported or not all(f.train for f in parts):
        raise InvalidArgument("--limit", f"{ds.name}: too few items to fit on one part and report on another")
    arms, chosen = cascade_arms(ds, parts, ladder, gates, settings)
    router_rows: list[tuple[Point, list[ItemResult]]] = []
    curves: list[Curve] = []
    notes = list(ds.notes)
    if settings.routers and _have_sklearn():
        router_arms, router_rows, curves = router_part(ds, parts, ladder, chosen, settings)
        arms += router_arms
    elif settings.routers:
        notes.append("router rows skipped: scikit-learn is not installed (pip install 'policyd[router]')")
    if not gates:
        notes.append("no post-generation signal is recorded (no answers, no log-probabilities): no cascade rows")
    runs = asyncio.run(run_arms(ds, arms, concurrency=settings.concurrency, progress=settings.progress))
    strong_model, cheap = ladder[-1], ladder[0]
    base = {m: run_items(ds, reported, (m,), parse_gate("none")) for m in ladder}
    rows: list[tuple[Point, list[ItemResult]]] = []
    for m in ladder:
        rows.append((point(f"always {m}", base[m], strong_model, cheapest=cheap), base[m]))
    best = best_single(ds, parts, reported)
    best_items = run_items(ds, reported, (best,), parse_gate("none"))
    rows.append((point(f"best single model on train: {best}", best_items, strong_model, cheapest=cheap), best_items))
    for run in runs:
        p = point(run.arm.label, run.results, strong_model, label_thresholds(run.arm), cheapest=cheap)
        rows.append((replace(p, thresholds=run.arm.thresholds(), engine=True), run.results))
    rows += router_rows
    weak_items, strong_items = base[cheap], base[strong_model]
    rows.append((metrics.oracle(weak_items, strong_items, strong_model), _oracle_items(weak_items, strong_items)))
    points = metrics.bootstrap(rows, weak_items, strong_items, seed=settings.seed, resamples=settings.resamples)
    weak, strong = points[0], points[len(ladder) - 1]
    if chosen:
        curves.insert(0, gate_curve(ds, reported, ladder, chosen[0][0], weak, strong))
    kinds = ["baseline"] * len(ladder) + ["single"] + [_kind(r.arm.label) for r in runs]
    kinds += [_kind(p.label) for p, _ in router_rows] + ["oracle"]
    return Report(
        dataset=ds.name,
        ladder=ladder,
        gate=gate_spec,
        n_items=len(reported),
        rows=[Row(p, kind) for p, kind in zip(points, kinds, strict=True)],
        weak=weak,
        strong=strong,
        curves=curves,
        mismatches=sum(len(r.mismatches) for r in runs),
        notes=(*notes, f"operating points ran on: {', '.join(sorted({r.strategy for r in runs}))}"),
        prices={m: asdict(p) for m, p in ds.prices.items() if m in needed},
        fitting=fitting_text(ds, parts, settings),
        gates_chosen=_chosen_text(chosen),
        seed=settings.seed,
    )


def limited(ds: Dataset, items: list[str], limit: int | None) -> list[str]:
    """The first ``limit`` items of each split (so a limited run still has train and test items)."""
    if not limit:
        return items
    seen: dict[str, int] = {}
    out = []
    for item in items:
        split = ds.get(item, next(m for m in ds.models if (item, m, "") in ds.index)).split
        seen[split] = seen.get(split, 0) + 1
        if seen[split] <= limit:
            out.append(item)
    return out


def _kind(label: str) -> str:
    return label.split(" ", 1)[0]


def _have_sklearn() -> bool:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


def fitting_text(ds: Dataset, parts: Sequence[Fold], settings: Settings) -> str:
    if len(parts) > 1:
        return (
            f"{len(parts)}-fold cross-fitting (seed {settings.seed}):"
            " each fold answered by what was fitted on the others"
        )
    kind = (
        "the dataset's train split"
        if settings.split in ("auto", "given")
        else f"{settings.split} (seed {settings.seed})"
    )
    return f"{kind}: fitted on {len(parts[0].train)} train items, reported on {len(parts[0].test)} test items"


def _chosen_text(chosen: list[tuple[Gate, str, int]]) -> list[str]:
    return [f"{obj}, fold {f}: {g.spec}" for g, obj, f in chosen]


def cascade_arms(
    ds: Dataset, parts: Sequence[Fold], ladder: tuple[str, ...], gates: Sequence[Gate], settings: Settings
) -> tuple[list[Arm], list[tuple[Gate, str, int]]]:
    """One cascade arm per objective; each fold's gate is chosen by cross-validation on its train items."""
    arms, chosen = [], []
    if not gates:
        return [], []
    for objective in settings.objectives:
        groups = []
        for f, fold in enumerate(parts):
            gate = choose_gate(ds, fold.train, ladder, gates, objective, k=settings.k, seed=settings.seed)
            chosen.append((gate, objective, f))
            groups.append((fold.test, fit_choice(ds, fold.train, ladder, gate, objective)))
        arms.append(Arm(f"cascade {objective}", tuple(groups)))
    return arms, chosen


def router_part(
    ds: Dataset,
    parts: Sequence[Fold],
    ladder: tuple[str, ...],
    chosen: list[tuple[Gate, str, int]],
    settings: Settings,
) -> tuple[list[Arm], list[tuple[Point, list[ItemResult]]], list[Curve]]:
    """Router arms (run through the engine) and kNN rows (computed directly) for every objective."""
    from policyd.eval.routed import route_specs, train_fold

    folder = settings.router_dir or Path(tempfile.mkdtemp(prefix="policyd-routers-"))
    cheap, strong = ladder[0], ladder[-1]
    trained = [
        train_fold(ds, fold, cheap, strong, folder / f"{ds.name}-fold{f}.json", seed=settings.seed)
        for f, fold in enumerate(parts)
    ]
    gate_of = {(obj, f): g for g, obj, f in chosen}
    arms: list[Arm] = []
    knn_rows: list[tuple[Point, list[ItemResult]]] = []
    for objective in settings.objectives:
        alone, combined, knn, learned = [], [], [], []
        for f, fold in enumerate(parts):
            a, c, k_cut, lg = route_specs(ds, fold, trained[f], ladder, gate_of.get((objective, f)), objective)
            alone.append((fold.test, a))
            learned.append((fold.test, lg))
            if c is not None:
                combined.append((fold.test, c))
            knn.append(
                [
                    run_route(ds, i, s, k_cut, strong, (cheap,), parse_gate("none"))
                    for i, s in zip(fold.test, trained[f].test_knn, strict=True)
                ]
            )
            knn_cut_text = repr(k_cut)
        arms.append(Arm(f"router {objective}", tuple(alone)))
        if combined:
            arms.append(Arm(f"route {objective}", tuple(combined)))
        arms.append(Arm(f"route+learned-gate {objective}", tuple(learned)))
        results = [r for part in knn for r in part]
        knn_rows.append((point(f"kNN-router {objective}", results, strong, knn_cut_text, cheapest=cheap), results))
    test_log = [s for t in trained for s in t.test_log]
    test_knn = [s for t in trained for s in t.test_knn]
    reported = [i for f in parts for i in f.test]
    curves = [
        router_curve(ds, reported, ladder, test_log, "router"),
        router_curve(ds, reported, ladder, test_knn, "kNN-router"),
    ]
    return arms, knn_rows, curves


def best_single(ds: Dataset, parts: Sequence[Fold], reported: Sequence[str]) -> str:
    """The most accurate model on the (first fold's) train items among those recorded for every item."""
    train = parts[0].train
    models = [m for m in ds.models if all((i, m, "") in ds.index for i in [*train, *reported])]
    return max(
        models, key=lambda m: (sum(ds.get(i, m).correct for i in train), -sum(ds.get(i, m).cost_usd for i in train))
    )


def _oracle_items(weak: Sequence[ItemResult], strong: Sequence[ItemResult]) -> list[ItemResult]:
    return [w if w.correct or not s.correct else s for w, s in zip(weak, strong, strict=True)]


def gate_curve(
    ds: Dataset, reported: Sequence[str], ladder: Sequence[str], gate: Gate, weak: Point, strong: Point
) -> Curve:
    """The gate's whole curve on the reported items (descriptive: no threshold is chosen from it)."""
    from policyd.eval.fit import sweep_point

    sw = sweep_of(ds, reported, ladder, gate)
    scores = [gate.score(observe(ds.get(i, m))) for i in reported for m in ladder[:-1]]
    ts = candidate_thresholds(scores, 40) if gate.scored else [None]
    return Curve(f"cascade ({gate.spec}) swept", [sweep_point(f"t={t!r}", sw, t) for t in ts], weak, strong)


def router_curve(
    ds: Dataset, reported: Sequence[str], ladder: Sequence[str], scores: Sequence[float], name: str
) -> Curve:
    """A router's whole curve on the reported items, every cut of its test scores (descriptive)."""
    import numpy as np

    from policyd.eval.routed import _arrays, routed_point
    from policyd.eval.router import route_thresholds

    cheap, strong = ladder[0], ladder[-1]
    s = np.array(scores)
    c_correct, c_cost = _arrays(ds, reported, cheap)
    below = (c_correct, c_cost, np.zeros(len(reported), dtype=int))
    st = _arrays(ds, reported, strong)
    pts = [replace(routed_point(s >= t, below, st), label=f"cut={t!r}") for t in route_thresholds(scores, 40)]
    weak_pt = routed_point(s > 2, below, st)
    strong_pt = routed_point(s > -1, below, st)
    return Curve(f"{name} swept", pts, weak_pt, strong_pt)
