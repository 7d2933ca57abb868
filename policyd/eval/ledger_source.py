"""Router training examples from the ledger's own outcomes, caller reports included.

The ledger keeps no prompts (by design), so a ledger-trained router reads the request's
``task`` and ``tenant``. An outcome teaches the router only when the cheap model answered:

* the cheap model's answer was final: positive when the outcome failed (a caller's
  ReportOutcome overrides the status), else negative;
* the request escalated past the cheap model and the strong model answered: positive when
  that outcome succeeded (the cheap answer failed its gate, the strong one was good), else
  negative (neither helped).

Requests routed straight to the strong model say nothing about the cheap one and are skipped.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from policyd.errors import InvalidArgument


@dataclass(frozen=True)
class Example:
    task: str
    tenant: str
    label: int
    reported: bool
    """The label comes from a caller's report rather than the outcome's status."""


@dataclass(frozen=True)
class LedgerExamples:
    examples: list[Example]
    cheap_usd: float
    """Mean cost of a cheap-model call in the ledger."""
    strong_usd: float
    skipped: int


def read_examples(path: Path, cheap: str, strong: str, policy: str | None = None) -> LedgerExamples:
    if not path.exists():
        raise InvalidArgument("--data-dir", f"no ledger at {path} (the daemon creates it on its first start)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        where, params = ("WHERE o.policy = ?", [policy]) if policy else ("", [])
        outcomes = conn.execute(
            "SELECT o.seq, o.task, o.tenant, o.final_model, o.default_success, o.reported_success"
            f" FROM outcomes o {where} ORDER BY o.seq",
            params,
        ).fetchall()
        calls: dict[int, set[str]] = {}
        cost: dict[str, list[float]] = {cheap: [], strong: []}
        for seq, model, cost_usd in conn.execute(
            "SELECT outcome_seq, model, cost_usd FROM attempts WHERE role != 'validate' AND error = ''"
        ):
            calls.setdefault(seq, set()).add(model)
            if model in cost and not cost_usd == 0:
                cost[model].append(cost_usd)
    except sqlite3.Error as exc:
        raise InvalidArgument(str(path), f"cannot read the ledger: {exc}") from None
    finally:
        conn.close()
    examples, skipped = [], 0
    for seq, task, tenant, final, default_success, reported in outcomes:
        success = bool(default_success if reported is None else reported)
        if cheap not in calls.get(seq, set()) or final not in (cheap, strong):
            skipped += 1
            continue
        label = int(not success) if final == cheap else int(success)
        examples.append(Example(task, tenant, label, reported is not None))
    return LedgerExamples(examples, _mean(cost[cheap]), _mean(cost[strong]), skipped)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
