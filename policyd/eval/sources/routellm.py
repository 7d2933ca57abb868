"""RouteLLM's recorded evaluations: GSM8K and MMLU answered by Mixtral-8x7B and GPT-4.

The files hold each model's correctness (and, for GSM8K, its full response) but no
cost. RouteLLM's paper prices the two at $0.24 (Mixtral-8x7B) and $24.7 (GPT-4) per
million tokens; we use those prices with token counts estimated from the text
(4 characters a token) and one output token for an MMLU letter.
"""

from __future__ import annotations

import csv
from pathlib import Path

from policyd.engine.tokens import text_tokens
from policyd.eval.records import Dataset, ModelPrice, Record

WEAK = "mixtral-8x7b"
STRONG = "gpt-4"
COLUMNS = {WEAK: "mistralai/Mixtral-8x7B-Instruct-v0.1", STRONG: "gpt-4-1106-preview"}
PRICE_SOURCE = "RouteLLM paper (Ong et al. 2024): $0.24 and $24.7 per million tokens"
PRICES = {
    WEAK: ModelPrice(0.24, 0.24, PRICE_SOURCE),
    STRONG: ModelPrice(24.7, 24.7, PRICE_SOURCE),
}
NOTES = (
    "costs: RouteLLM's per-token prices times token counts estimated from the text (4 characters a token)",
    "no split in the source: thresholds are fitted by k-fold cross-validation",
)


def _open(path: Path) -> csv.DictReader:
    csv.field_size_limit(1 << 30)
    return csv.DictReader(path.open(encoding="utf-8", newline=""))


def _record(dataset: str, item: str, prompt: str, model: str, answer: str, correct: str, out_tokens: int) -> Record:
    tokens_in = text_tokens(prompt)
    return Record(
        dataset=dataset,
        split="",
        item=item,
        model=model,
        answer=answer,
        correct=correct.strip() == "True",
        cost_usd=PRICES[model].cost_usd(tokens_in, out_tokens),
        prompt=prompt,
        tokens_in=tokens_in,
        tokens_out=out_tokens,
    )


def load_gsm8k(data: Path) -> Dataset:
    records = []
    for i, row in enumerate(_open(data / "RouteLLM" / "gsm8k" / "gsm8k_responses.csv")):
        for model, column in COLUMNS.items():
            answer = row[f"{column}_response"]
            records.append(
                _record("routellm-gsm8k", str(i), row["prompt"], model, answer, row[column], text_tokens(answer))
            )
    return Dataset(
        "routellm-gsm8k", records, dict(PRICES), ladder=(WEAK, STRONG), gate="arithmetic+length", notes=NOTES
    )


def load_mmlu(data: Path) -> Dataset:
    records = []
    folder = data / "RouteLLM" / "mmlu" / "responses"
    files = sorted(folder.glob("mmlu_*.csv"))
    if not files:
        raise FileNotFoundError(2, "no mmlu_*.csv", str(folder))
    for path in files:
        subject = path.stem.removeprefix("mmlu_")
        for i, row in enumerate(_open(path)):
            for model, column in COLUMNS.items():
                # The source keeps only correctness: the answer text is not recorded.
                records.append(_record("routellm-mmlu", f"{subject}/{i}", row["prompt"], model, "", row[column], 1))
    notes = (*NOTES, "answers are not recorded (only correctness): gates that read the answer do not apply")
    return Dataset("routellm-mmlu", records, dict(PRICES), ladder=(WEAK, STRONG), gate="none", notes=notes)
