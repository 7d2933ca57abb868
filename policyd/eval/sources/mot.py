"""LLM-MoT-cascade (Yue et al. 2024) on DATE: GPT-3.5-turbo votes over 20 sampled answers, GPT-4 answers once.

The weak rung is MoT's own: 20 chain-of-thought samples from gpt-3.5-turbo and their
majority answer. Its confidence is the self-consistency of the vote, recorded as
``logprob_conf = log(votes for the majority answer / samples)`` so a logprob gate reads
it as it would a token log-probability. The strong rung is GPT-4's greedy CoT answer.
The files hold no costs: tokens are estimated from the text (the few-shot exemplars are
not recorded, so input tokens count the question only, for both models) and priced at
the list prices MoT's paper used.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from policyd.engine.tokens import text_tokens
from policyd.eval.records import Dataset, ModelPrice, Record

WEAK = "gpt-3.5-turbo-vote20"
STRONG = "gpt-4"
SOURCE = "list prices when MoT was recorded: gpt-3.5-turbo $2/M tokens, gpt-4 $30/M in, $60/M out"
PRICES = {WEAK: ModelPrice(2.0, 2.0, SOURCE), STRONG: ModelPrice(30.0, 60.0, SOURCE)}
FILES = {WEAK: "GPT3_result/date_cot1.json", STRONG: "GPT4_result/date_greedy_cot1.json"}


def _read(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        rows = json.load(fh)
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list")
    return rows


def _record(model: str, i: int, row: dict[str, Any]) -> Record:
    results = [str(r) for r in row.get("results", [])]
    prediction = str(row["prediction"])
    tokens_in = text_tokens(row["question"])
    tokens_out = sum(text_tokens(g) for g in row["generated"])
    votes = results.count(prediction) if results else 1
    signals = {"logprob_conf": math.log(votes / len(results))} if model == WEAK and results else {}
    return Record(
        dataset="mot-date",
        split="",
        item=str(i),
        model=model,
        answer=prediction,
        correct=prediction == str(row["answer"]),
        cost_usd=PRICES[model].cost_usd(tokens_in, tokens_out),
        prompt=row["question"],
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        signals=signals,
    )


def load(data: Path) -> Dataset:
    folder = data / "LLM_MoT_cascade"
    records = [_record(model, i, row) for model, f in FILES.items() for i, row in enumerate(_read(folder / f))]
    notes = (
        "costs: list prices times tokens estimated from the text (question + every sampled output)",
        "the weak rung's confidence is its 20-sample vote share, read as a log-probability",
        "no split in the source",
    )
    return Dataset("mot-date", records, dict(PRICES), ladder=(WEAK, STRONG), gate="logprob", notes=notes)
