"""rational-llm-cascades (Zellinger & Thomson): nine models with real per-call costs and log-prob confidences.

``<ds>_<split>_calls.csv`` has one row per (question, model) with the answer, the
correctness flag, the USD cost, tokens, latency and ``logprob_conf``;
``<ds>_<split>_items.csv`` holds the prompt and the gold answer. ``logprob_conf`` of
``-inf`` (a few TriviaQA/TruthfulQA rows) is read as the lowest confidence.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

from policyd.eval.records import Dataset, Record, fit_prices

DATASETS = ("mmlu", "medmcqa", "triviaqa", "truthfulqa", "gsm8k")
LOWEST_CONFIDENCE = -1e9
LADDER = ("gpt-4o-mini", "llama3.1-405b")
"""Default ladder: the cheapest model above 70% on MMLU, then the most accurate one."""


def _float(text: str) -> float:
    value = float(text)
    return LOWEST_CONFIDENCE if math.isinf(value) and value < 0 else value


def _items(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["qid"]: row["user_prompt"] for row in csv.DictReader(fh)}


def load(data: Path, name: str) -> Dataset:
    folder = data / "rational-llm-cascades"
    dataset = f"cascades-{name}"
    records: list[Record] = []
    splits = [s for s in ("train", "test") if (folder / f"{name}_{s}_calls.csv").exists()]
    if not splits:
        raise FileNotFoundError(2, "no calls file", str(folder / f"{name}_train_calls.csv"))
    for split in splits:
        prompts = _items(folder / f"{name}_{split}_items.csv")
        with (folder / f"{name}_{split}_calls.csv").open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                records.append(
                    Record(
                        dataset=dataset,
                        # A dataset recorded on one split only is cross-validated like one without splits.
                        split=split if len(splits) == 2 else "",
                        item=f"{split}/{row['qid']}",  # qids restart at 0 in each split
                        model=row["model"],
                        answer=row["answer"],
                        correct=row["correct"] == "1",
                        cost_usd=float(row["cost_usd"]),
                        prompt=prompts.get(row["qid"], ""),
                        tokens_in=int(row["tokens_in"]),
                        tokens_out=int(row["tokens_out"]),
                        latency_ms=float(row["latency_ms"]),
                        signals={"logprob_conf": _float(row["logprob_conf"])},
                    )
                )
    notes: tuple[str, ...] = ("costs, tokens, latencies and log-prob confidences as recorded by the source",)
    if len(splits) < 2:
        notes = (*notes, f"only the {splits[0]} split is recorded: thresholds are fitted by k-fold cross-validation")
    prices = fit_prices(records, "fitted to the recorded per-call costs and tokens")
    return Dataset(dataset, records, prices, ladder=LADDER, gate="logprob", notes=notes)


def loader(name: str) -> Callable[[Path], Dataset]:
    return lambda data: load(data, name)
