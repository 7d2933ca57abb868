"""The evaluation's outputs: a text table, a JSON document and a cost-accuracy frontier PNG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policyd.eval.metrics import Point, random_mix


@dataclass
class Report:
    dataset: str
    ladder: tuple[str, ...]
    gate: str
    n_items: int
    weak: Point
    strong: Point
    oracle: Point
    policies: list[Point]
    mixes: list[Point]
    sweep: list[Point]
    curve: list[tuple[float, float]]
    cpt50: float
    cpt80: float
    apgr: float
    mismatches: int
    notes: tuple[str, ...] = ()
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    fitting: str = ""

    def rows(self) -> list[Point]:
        out = [self.weak, self.strong]
        for policy, mix in zip(self.policies, self.mixes, strict=True):
            out += [policy, mix]
        return [*out, self.oracle]

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "ladder": list(self.ladder),
            "gate": self.gate,
            "items": self.n_items,
            "fitting": self.fitting,
            "rows": [p.to_json(self.weak, self.strong) for p in self.rows()],
            "gate_curve": {
                "cpt50": _num(self.cpt50),
                "cpt80": _num(self.cpt80),
                "apgr": _num(self.apgr),
                "points": [p.to_json(self.weak, self.strong) for p in self.sweep],
            },
            "engine_vs_direct_mismatches": self.mismatches,
            "prices": self.prices,
            "notes": list(self.notes),
        }


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _usd(x: float) -> str:
    return "-" if not math.isfinite(x) else f"${x:.6f}" if x < 0.01 else f"${x:.4f}"


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x * 100:.1f}%"


def table(report: Report) -> str:
    head = ("operating point", "threshold", "accuracy", "USD/query", "USD/success", "escalated", "strong", "PGR")
    lines = [head]
    for p in report.rows():
        lines.append(
            (
                p.label,
                p.threshold or "-",
                _pct(p.accuracy),
                _usd(p.usd_per_query),
                _usd(p.cost_per_success),
                _pct(p.escalation_rate),
                _pct(p.strong_share),
                _pct(p.pgr(report.weak, report.strong)),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = [
        f"{report.dataset}: {report.n_items} items, ladder {' -> '.join(report.ladder)}, gate {report.gate}",
        f"thresholds: {report.fitting}",
    ]
    for n, row in enumerate(lines):
        out.append(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=False))
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    out.append(
        f"gate curve on the reported items: CPT(50%) {_pct(report.cpt50)}, CPT(80%) {_pct(report.cpt80)},"
        f" APGR {report.apgr:.3f} (random mix: CPT(50%) 50.0%, APGR 0.500)"
    )
    if report.mismatches:
        out.append(f"warning: the engine and the direct computation disagree on {report.mismatches} items")
    out += [f"note: {note}" for note in report.notes]
    return "\n".join(out)


def plot(report: Report, path: Path) -> None:
    """The cost-accuracy frontier: the gate's sweep, the fitted points and the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    sweep = sorted(report.sweep, key=lambda p: p.usd_per_query)
    ax.plot(
        [p.usd_per_query for p in sweep],
        [p.accuracy for p in sweep],
        "-",
        color="tab:blue",
        alpha=0.6,
        label=f"gate {report.gate} (threshold sweep)",
    )
    mix = [random_mix(report.weak, report.strong, i / 50) for i in range(51)]  # a curve on a log axis
    ax.plot(
        [p.usd_per_query for p in mix],
        [p.accuracy for p in mix],
        "--",
        color="grey",
        label="random mix",
    )
    for p, style, name in (
        (report.weak, "s", f"always {report.ladder[0]}"),
        (report.strong, "D", f"always {report.ladder[-1]}"),
        (report.oracle, "*", "oracle"),
    ):
        ax.plot([p.usd_per_query], [p.accuracy], style, markersize=9, label=name)
    for p in report.policies:
        ax.plot([p.usd_per_query], [p.accuracy], "o", color="tab:red", markersize=7)
        ax.annotate(p.label, (p.usd_per_query, p.accuracy), textcoords="offset points", xytext=(5, -10), fontsize=8)
    ax.plot([], [], "o", color="tab:red", label="fitted on train, run through the engine")
    ax.set_xscale("log")
    ax.set_xlabel("USD per query (log scale)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{report.dataset}: {report.n_items} items, APGR {report.apgr:.3f}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def label_threshold(thresholds: Sequence[float | None]) -> str:
    """Thresholds of a point's folds, compactly."""
    shown = ["off" if t is None else "never" if math.isinf(t) else f"{t:.4g}" for t in thresholds]
    return shown[0] if len(set(shown)) == 1 else f"{len(shown)} folds: " + "/".join(shown)
