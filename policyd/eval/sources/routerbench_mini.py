"""routerbench-mini (qwen3.5-v5-3200-800): a cheap and a strong Qwen3.5 model on 800 mixed test items.

``test_predictions.csv`` holds one row per (item, strategy); the ``always_cheap`` and
``always_strong`` rows are the two models' own answers, with correctness, USD cost,
tokens and latency. The prompts are not recorded: a request's text is the item's
metadata (dataset, task family, type, subtype, difficulty), which is what a router
can learn from here. Only a test split is recorded.
"""

from __future__ import annotations

import csv
from pathlib import Path

from policyd.eval.records import Dataset, Record, fit_prices

STRATEGIES = {"always_cheap": "qwen3.5-35b-a3b", "always_strong": "qwen3.5-397b-a17b"}
FEATURES = ("dataset", "task_family", "task_type", "task_subtype", "difficulty_group")


def load(data: Path) -> Dataset:
    path = data / "routerbench-mini" / "test_predictions.csv"
    records: list[Record] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["strategy"] not in STRATEGIES:
                continue
            records.append(
                Record(
                    dataset="routerbench-mini",
                    split="",
                    item=row["canonical_id"],
                    model=row["selected_model"],
                    answer=row["answer"],
                    correct=row["correct"] == "1",
                    cost_usd=float(row["cost"]),
                    prompt=" ".join(f"{f}={row[f]}" for f in FEATURES),
                    tokens_in=int(row["prompt_tokens"] or 0),
                    tokens_out=int(row["completion_tokens"] or 0),
                    latency_ms=float(row["latency_ms"] or 0),
                )
            )
    notes = (
        "costs, tokens and latencies as recorded; prompts are not recorded (requests carry the item's metadata)",
        "only the test split is recorded",
    )
    prices = fit_prices(records, "fitted to the recorded costs and tokens")
    return Dataset("routerbench-mini", records, prices, ladder=tuple(STRATEGIES.values()), gate="auto", notes=notes)
