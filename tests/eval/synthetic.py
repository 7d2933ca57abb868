"""Small recorded datasets the tests generate: a cheap model whose confidence predicts its correctness."""

from __future__ import annotations

import math
import random
from pathlib import Path

from policyd.eval.records import Record, write_jsonl

CHEAP, STRONG = "cheap-1", "strong-1"


def records(n_train: int = 120, n_test: int = 120, *, seed: int = 7, split: bool = True) -> list[Record]:
    """Cheap: right when its confidence is high (mostly); strong: right 95% of the time, 30x the price."""
    rng = random.Random(seed)
    out: list[Record] = []
    for i in range(n_train + n_test):
        part = ("train" if i < n_train else "test") if split else ""
        conf = math.log(rng.uniform(0.2, 1.0))
        cheap_right = rng.random() < math.exp(conf) ** 2
        prompt = f"question {i}: what is {i} + {i}?"
        for model, right, tin, tout, price in (
            (CHEAP, cheap_right, 40, 10, 0.1),
            (STRONG, rng.random() < 0.95, 40, 20, 3.0),
        ):
            answer = str(2 * i) if right else str(2 * i + 1)
            out.append(
                Record(
                    dataset="synthetic",
                    split=part,
                    item=str(i),
                    model=model,
                    answer=f"#### {answer}",
                    correct=right,
                    cost_usd=(tin + tout) * price / 1e6,
                    prompt=prompt,
                    tokens_in=tin,
                    tokens_out=tout,
                    latency_ms=12.5,
                    signals={"logprob_conf": conf} if model == CHEAP else {},
                )
            )
    return out


def write(path: Path, **kw: object) -> Path:
    write_jsonl(records(**kw), path)  # type: ignore[arg-type]
    return path
