"""Loaders for recorded datasets, read at run time from the shared research data folder.

The data is never copied into the repository (several folders have no licence). The
folder is ``--data``, else ``$POLICYD_EVAL_DATA``, else the first ``shared/research/data``
found beside the repository or one of its parents (``<repo>/../shared/research/data``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from policyd.errors import InvalidArgument
from policyd.eval.records import Dataset, fit_prices, iter_jsonl
from policyd.eval.sources import cascades, mot, routellm, routerbench_mini, routerdc

Loader = Callable[[Path], Dataset]

DATASETS: dict[str, Loader] = {
    "routellm-gsm8k": routellm.load_gsm8k,
    "routellm-mmlu": routellm.load_mmlu,
    **{f"cascades-{name}": cascades.loader(name) for name in cascades.DATASETS},
    **{f"routerdc-{name}": routerdc.loader(name) for name in routerdc.DATASETS},
    "mot-date": mot.load,
    "routerbench-mini": routerbench_mini.load,
}
"""Dataset names accepted by ``policyd eval``; ``jsonl:PATH`` loads records in the documented schema."""


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def data_dir(explicit: str | Path | None = None) -> Path:
    """Where the shared recorded data lives (see the module docstring for the order)."""
    if explicit:
        return Path(explicit)
    if os.environ.get("POLICYD_EVAL_DATA"):
        return Path(os.environ["POLICYD_EVAL_DATA"])
    root = repo_root()
    for parent in (root, *root.parents):
        candidate = parent.parent / "shared" / "research" / "data"
        if candidate.is_dir():
            return candidate
    return root.parent / "shared" / "research" / "data"


_LOADED: dict[str, Dataset] = {}


def remember(ds: Dataset) -> str:
    """Keep a loaded dataset for replay providers built in this process; returns the name to configure."""
    key = f"loaded:{ds.name}@{id(ds):x}"
    _LOADED[key] = ds
    return key


def load_dataset(name: str, data: str | Path | None = None) -> Dataset:
    """Load a named dataset (or ``jsonl:PATH``); errors name the dataset and the missing file."""
    if name in _LOADED:
        return _LOADED[name]
    if name.startswith("jsonl:"):
        path = Path(name.removeprefix("jsonl:"))
        records = list(iter_jsonl(path))
        if not records:
            raise InvalidArgument("--dataset", f"{path} holds no records")
        ladder = _cheapest_first(records)
        return Dataset(
            name=records[0].dataset,
            records=records,
            prices=fit_prices(records, f"fitted to the recorded costs in {path.name}"),
            ladder=(ladder[0], ladder[-1]),
            gate="logprob" if any("logprob_conf" in r.signals for r in records) else "length",
        )
    loader = DATASETS.get(name)
    if loader is None:
        raise InvalidArgument("--dataset", f"unknown dataset {name!r} (known: {', '.join(DATASETS)}, jsonl:PATH)")
    folder = data_dir(data)
    if not folder.is_dir():
        raise InvalidArgument("--data", f"{folder} is not a directory (set --data or $POLICYD_EVAL_DATA)")
    try:
        return loader(folder)
    except FileNotFoundError as exc:
        raise InvalidArgument("--data", f"{name}: missing file {exc.filename}") from None


def _cheapest_first(records: list) -> list[str]:
    cost: dict[str, list[float]] = {}
    for rec in records:
        cost.setdefault(rec.model, []).append(rec.cost_usd)
    return sorted(cost, key=lambda m: sum(cost[m]) / len(cost[m]))
