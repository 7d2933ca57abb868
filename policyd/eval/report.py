"""The evaluation's outputs: a text table, a JSON document and a cost-accuracy frontier PNG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyd.eval import metrics
from policyd.eval.metrics import Point

if TYPE_CHECKING:
    from policyd.eval.runner import Arm


@dataclass(frozen=True)
class Row:
    point: Point
    kind: str
    """baseline, single, cascade, router, route, kNN-router, oracle."""


@dataclass
class Curve:
    """A descriptive sweep on the reported items (no threshold is chosen from it), with CPT and APGR."""

    name: str
    points: list[Point]
    weak: Point
    strong: Point

    @property
    def pairs(self) -> list[tuple[float, float]]:
        return metrics.curve(self.points, self.weak, self.strong)

    def summary(self) -> dict[str, float | None]:
        pairs = self.pairs
        return {
            "cpt50": _num(metrics.cpt(pairs, 0.5)),
            "cpt80": _num(metrics.cpt(pairs, 0.8)),
            "apgr": _num(metrics.apgr(pairs)),
        }


@dataclass
class Report:
    dataset: str
    ladder: tuple[str, ...]
    gate: str
    n_items: int
    rows: list[Row]
    weak: Point
    strong: Point
    curves: list[Curve]
    mismatches: int
    notes: tuple[str, ...] = ()
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    fitting: str = ""
    gates_chosen: list[str] = field(default_factory=list)
    seed: int = 0

    def row(self, label: str) -> Point:
        return next(r.point for r in self.rows if r.point.label == label)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "ladder": list(self.ladder),
            "gate": self.gate,
            "gates_chosen_by_cross_validation": self.gates_chosen,
            "items": self.n_items,
            "fitting": self.fitting,
            "seed": self.seed,
            "rows": [{**r.point.to_json(self.weak, self.strong), "kind": r.kind} for r in self.rows],
            "curves": [
                {"name": c.name, **c.summary(), "points": [p.to_json(c.weak, c.strong) for p in c.points]}
                for c in self.curves
            ],
            "engine_vs_direct_mismatches": self.mismatches,
            "prices": self.prices,
            "notes": list(self.notes),
        }


def label_thresholds(arm: Arm) -> str:
    """What each fold was answered with, exactly (full float precision)."""
    from policyd.eval.runner import RouteSpec

    shown = []
    for _, spec in arm.groups:
        if isinstance(spec, RouteSpec) and spec.post_threshold is not None:
            below = f"{spec.choice.ladder[0]}, escalating when the learned gate's P(wrong) >= {spec.post_threshold!r}"
            shown.append(f"score >= {spec.threshold!r} -> {spec.strong}, else {below}")
        elif isinstance(spec, RouteSpec):
            shown.append(f"score >= {spec.threshold!r} -> {spec.strong}, else {spec.choice.label()}")
        else:
            shown.append(spec.label())
    return shown[0] if len(set(shown)) == 1 else " | ".join(shown)


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _usd(x: float) -> str:
    return "-" if not math.isfinite(x) else f"${x:.6f}" if x < 0.01 else f"${x:.4f}"


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x * 100:.1f}%"


def _ci(p: Point, key: str, fmt: Any) -> str:
    lo, hi = p.ci.get(key, (math.nan, math.nan))
    return "" if not (math.isfinite(lo) and math.isfinite(hi)) else f" [{fmt(lo)}, {fmt(hi)}]"


HEAD = (
    "operating point",
    "accuracy [95% CI]",
    "USD/query [95% CI]",
    "USD/success [95% CI]",
    "above cheap",
    "strong",
    "PGR [95% CI]",
)


def table(report: Report) -> str:
    lines = [HEAD]
    for r in report.rows:
        p = r.point
        lines.append(
            (
                p.label + ("" if p.engine or r.kind in ("baseline", "single", "oracle") else " (direct)"),
                _pct(p.accuracy) + _ci(p, "accuracy", _pct),
                _usd(p.usd_per_query) + _ci(p, "usd_per_query", _usd),
                _usd(p.cost_per_success) + _ci(p, "cost_per_success", _usd),
                _pct(p.above_cheap),
                _pct(p.strong_share),
                _pct(p.pgr(report.weak, report.strong)) + _ci(p, "pgr", _pct),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(HEAD))]
    out = [
        f"{report.dataset}: {report.n_items} reported items, ladder {' -> '.join(report.ladder)}, gate {report.gate}",
        f"fitting: {report.fitting}",
    ]
    for n, row in enumerate(lines):
        out.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    out.append("exact thresholds (per fold; the same values are in report.json):")
    out += [f"  {r.point.label}: {r.point.threshold}" for r in report.rows if r.point.threshold]
    if report.gates_chosen:
        out.append("gates chosen by cross-validation on train: " + "; ".join(report.gates_chosen))
    for c in report.curves:
        s = c.summary()
        out.append(
            f"{c.name} on the reported items: CPT(50%) {_pct(s['cpt50'] if s['cpt50'] is not None else math.nan)},"
            f" CPT(80%) {_pct(s['cpt80'] if s['cpt80'] is not None else math.nan)}, APGR {s['apgr'] or 0:.3f}"
            " (random mix: CPT(50%) 50.0%, APGR 0.500)"
        )
    if report.mismatches:
        out.append(f"warning: the engine and the direct computation disagree on {report.mismatches} items")
    out += [f"note: {note}" for note in report.notes]
    return "\n".join(out)


STYLE = {
    "baseline": ("s", "black"),
    "single": ("P", "tab:brown"),
    "cascade": ("o", "tab:red"),
    "router": ("^", "tab:green"),
    "route": ("D", "tab:purple"),
    "route+learned-gate": ("X", "tab:blue"),
    "kNN-router": ("v", "tab:olive"),
    "oracle": ("*", "gold"),
}


def plot(report: Report, path: Path) -> None:
    """Cost per query against accuracy: baselines (every rung), best single model, fitted rows with 95%
    bootstrap intervals on both axes, the swept curves, and the random mix; legend outside the axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5), dpi=90)
    mix = [metrics.random_mix(report.weak, report.strong, i / 50) for i in range(51)]
    ax.plot([p.usd_per_query for p in mix], [p.accuracy for p in mix], "--", color="grey", lw=1, label="random mix")
    for c, color in zip(report.curves, ("tab:red", "tab:green", "tab:olive"), strict=False):
        pts = sorted(c.points, key=lambda p: p.usd_per_query)
        apgr = c.summary()["apgr"] or 0.0
        ax.plot(
            [p.usd_per_query for p in pts],
            [p.accuracy for p in pts],
            "-",
            color=color,
            alpha=0.35,
            lw=1.5,
            label=f"{c.name} (APGR {apgr:.2f})",
        )
    seen: set[str] = set()
    fitted = "cross-fitted" if report.fitting[:1].isdigit() else "fitted on train"
    rung_markers = iter(("s", "D", "p", "h", "8"))
    for r in report.rows:
        p = r.point
        marker, color = STYLE.get(r.kind, ("o", "tab:blue"))
        if r.kind == "baseline":
            marker = next(rung_markers, "s")
        lo_a, hi_a = p.ci.get("accuracy", (p.accuracy, p.accuracy))
        lo_c, hi_c = p.ci.get("usd_per_query", (p.usd_per_query, p.usd_per_query))
        label = r.kind if r.kind not in ("baseline", "single", "oracle") else p.label
        ax.errorbar(
            [p.usd_per_query],
            [p.accuracy],
            yerr=[[max(0.0, p.accuracy - lo_a)], [max(0.0, hi_a - p.accuracy)]],
            xerr=[[max(0.0, p.usd_per_query - lo_c)], [max(0.0, hi_c - p.usd_per_query)]],
            fmt=marker,
            color=color,
            markersize=7,
            capsize=2,
            lw=0.8,
            label=None
            if label in seen
            else (label if r.kind in ("baseline", "single", "oracle") else f"{label} ({fitted})"),
        )
        seen.add(label)
    ax.set_xscale("log")
    ax.set_xlabel("USD per query (log scale)")
    ax.set_ylabel("accuracy (95% bootstrap intervals)")
    ax.set_title(f"{report.dataset}: {report.n_items} reported items; {report.fitting.split(':')[0]}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def rows_of(report: Report, kind: str) -> Sequence[Point]:
    return [r.point for r in report.rows if r.kind == kind]
