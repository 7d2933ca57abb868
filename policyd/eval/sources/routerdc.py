"""RouterDC's RouterBench zero-shot subset: eleven models with recorded responses and costs.

Each row holds a prompt, every model's correctness, response and total cost. Token
counts are not recorded: they are estimated from the text, and each model's price is
fitted so that the replayed usage reproduces the recorded cost.
"""

from __future__ import annotations

import ast
import csv
from collections.abc import Callable
from pathlib import Path

from policyd.engine.tokens import text_tokens
from policyd.eval.records import Dataset, Record, fit_prices

DATASETS = ("arc_challenge", "mbpp", "winograde")
LADDER = ("mistralai/mistral-7b-chat", "gpt-4-1106-preview")


def _text(cell: str) -> str:
    """Cells hold a Python list literal of strings (``"['A']"``); join its strings."""
    try:
        value = ast.literal_eval(cell)
    except (ValueError, SyntaxError):
        return cell
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def item_id(split: str, sample_id: str, seen: dict[str, int]) -> str:
    """``split/sample_id``; a sample id repeated within a split (arc_challenge has 8) gets ``#2``, ``#3``..."""
    seen[sample_id] = seen.get(sample_id, 0) + 1
    n = seen[sample_id]
    return f"{split}/{sample_id}" if n == 1 else f"{split}/{sample_id}#{n}"


def load(data: Path, name: str) -> Dataset:
    folder = data / "RouterDC" / "routerbench_zs"
    dataset = f"routerdc-{name}"
    records: list[Record] = []
    csv.field_size_limit(1 << 30)
    for split in ("train", "test"):
        with (folder / f"{name}_{split}.csv").open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            models = [c.removesuffix("|total_cost") for c in reader.fieldnames or () if c.endswith("|total_cost")]
            seen: dict[str, int] = {}
            for row in reader:
                prompt = _text(row["prompt"])
                item = item_id(split, row["sample_id"], seen)
                for model in models:
                    if not row[model] or not row[f"{model}|total_cost"]:
                        continue  # a few cells are blank: that model has no record for this item
                    answer = _text(row[f"{model}|model_response"])
                    records.append(
                        Record(
                            dataset=dataset,
                            split=split,
                            item=item,
                            model=model,
                            answer=answer,
                            correct=float(row[model]) >= 0.5,
                            cost_usd=float(row[f"{model}|total_cost"]),
                            prompt=prompt,
                            tokens_in=text_tokens(prompt),
                            tokens_out=text_tokens(answer),
                        )
                    )
    notes = ("costs as recorded; token counts estimated from the text, prices fitted to the costs",)
    prices = fit_prices(records, "fitted to the recorded costs (tokens estimated)")
    return Dataset(dataset, records, prices, ladder=LADDER, gate="format", notes=notes)


def loader(name: str) -> Callable[[Path], Dataset]:
    return lambda data: load(data, name)
