"""The record schema: one recorded model answer to one item, and a dataset of them.

A record is what ``policyd eval`` replays: for an item (a prompt with a known right
answer) and a model (at a variant: an effort level or a sample index), the answer the
model gave, whether it was correct, what it cost and the signals a gate may read.
``docs/eval.md`` documents the JSONL form, so teams can record their own traffic.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from policyd.errors import InvalidArgument
from policyd.types import Effort

ITEM_LABEL = "replay.item"
"""The request label that tells the replay provider which recorded item a request is."""

SPLITS = ("train", "test", "")
"""``""`` means the dataset has no split: thresholds are then fitted by k-fold."""


def variant_of(effort: Effort | str = Effort.OFF, sample: int = 0) -> str:
    """The canonical variant string: ``""`` (effort off, first sample), ``effort=high``, ``sample=2``..."""
    parts = []
    if str(effort) != Effort.OFF.value:
        parts.append(f"effort={effort}")
    if sample:
        parts.append(f"sample={sample}")
    return ",".join(parts)


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded call: ``model`` answered ``item`` (at ``variant``) with ``answer``."""

    dataset: str
    split: str
    item: str
    model: str
    answer: str
    correct: bool
    cost_usd: float
    prompt: str = ""
    variant: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    signals: Mapping[str, float] = field(default_factory=dict)
    """Named scores a gate may read, e.g. ``logprob_conf`` (log-probability of the answer)."""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["signals"] = dict(self.signals)
        return out


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens for a dataset's model, and where the figure comes from."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float
    source: str

    def cost_usd(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_usd_per_mtok + tokens_out * self.output_usd_per_mtok) / 1_000_000


@dataclass
class Dataset:
    """Records indexed by (item, model, variant), with each model's price and a suggested ladder."""

    name: str
    records: list[Record]
    prices: dict[str, ModelPrice]
    ladder: tuple[str, ...] = ()
    """Models from cheapest to strongest that the dataset suggests as a default ladder."""
    gate: str = "logprob"
    """The default gate for this dataset (see ``policyd.eval.gates``)."""
    notes: tuple[str, ...] = ()
    """Assumptions made while loading (e.g. token counts estimated from text)."""
    index: dict[tuple[str, str, str], Record] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        split_of: dict[str, str] = {}
        for rec in self.records:
            key = (rec.item, rec.model, rec.variant)
            if key in self.index:
                raise InvalidArgument(
                    f"{self.name}.item",
                    f"two records for item {rec.item!r}, model {rec.model!r}, variant {rec.variant!r}",
                )
            # Leak-free by construction: an item belongs to exactly one split.
            if split_of.setdefault(rec.item, rec.split) != rec.split:
                raise InvalidArgument(
                    f"{self.name}.split",
                    f"item {rec.item!r} is in both {split_of[rec.item] or 'no split'!r} and {rec.split or 'no split'!r}"
                    " (item ids must be unique across splits, e.g. prefix them with the split)",
                )
            self.index[key] = rec

    @property
    def models(self) -> list[str]:
        return sorted({r.model for r in self.records})

    @property
    def has_splits(self) -> bool:
        return any(r.split == "test" for r in self.records) and any(r.split == "train" for r in self.records)

    def items(self, split: str | None = None) -> list[str]:
        """Item ids in file order, restricted to ``split`` when given."""
        seen: dict[str, None] = {}
        for rec in self.records:
            if split is None or rec.split == split:
                seen.setdefault(rec.item, None)
        return list(seen)

    def get(self, item: str, model: str, variant: str = "") -> Record:
        rec = self.index.get((item, model, variant))
        if rec is None:
            raise KeyError(f"{self.name}: no record for item {item!r}, model {model!r}, variant {variant!r}")
        return rec

    def prompt(self, item: str, model: str) -> str:
        return self.get(item, model).prompt

    def has_signal(self, name: str, models: Sequence[str]) -> bool:
        """Whether any default-variant record of ``models`` carries the signal ``name``."""
        wanted = set(models)
        return any(name in r.signals for r in self.records if r.model in wanted and not r.variant)

    def has_answers(self, models: Sequence[str]) -> bool:
        wanted = set(models)
        return any(r.answer for r in self.records if r.model in wanted)

    def complete_items(self, models: Sequence[str], split: str | None = None) -> list[str]:
        """Items that have a default-variant record for every one of ``models``."""
        return [i for i in self.items(split) if all((i, m, "") in self.index for m in models)]


# ---------------------------------------------------------------- JSONL


def write_jsonl(records: Iterable[Record], path: Path) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
            n += 1
    return n


_REQUIRED = ("dataset", "item", "model", "answer", "correct", "cost_usd")


def _record_from(obj: Any, where: str) -> Record:
    if not isinstance(obj, dict):
        raise InvalidArgument(where, f"expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise InvalidArgument(where, f"missing {', '.join(missing)}")
    known = set(Record.__dataclass_fields__)
    unknown = sorted(set(obj) - known)
    if unknown:
        raise InvalidArgument(f"{where}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(known))})")
    split = obj.get("split", "")
    if split not in SPLITS:
        raise InvalidArgument(f"{where}.split", f"must be train, test or empty (got {split!r})")
    cost = obj["cost_usd"]
    if not isinstance(cost, (int, float)) or isinstance(cost, bool) or not math.isfinite(cost) or cost < 0:
        raise InvalidArgument(f"{where}.cost_usd", f"must be a finite number >= 0 (got {cost!r})")
    if not isinstance(obj["correct"], bool):
        raise InvalidArgument(f"{where}.correct", f"must be true or false (got {obj['correct']!r})")
    signals = obj.get("signals") or {}
    if not isinstance(signals, dict) or not all(isinstance(v, (int, float)) for v in signals.values()):
        raise InvalidArgument(f"{where}.signals", "must map names to numbers")
    fields = {k: obj[k] for k in known if k in obj}
    fields["signals"] = {k: float(v) for k, v in signals.items()}
    fields["item"] = str(obj["item"])
    try:
        return Record(**fields)
    except TypeError as exc:
        raise InvalidArgument(where, str(exc)) from None


def iter_jsonl(path: Path) -> Iterator[Record]:
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(str(path), f"cannot read: {exc.strerror or exc}") from None
    with fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArgument(where, f"not valid JSON: {exc.msg}") from None
            yield _record_from(obj, where)


# ---------------------------------------------------------------- prices


def fit_prices(records: Iterable[Record], source: str) -> dict[str, ModelPrice]:
    """Per-model prices that explain the recorded costs from the recorded tokens.

    Least squares on ``cost = tokens_in * a + tokens_out * b`` (both >= 0); where the
    tokens cannot separate the two (or are missing) one blended price is used. The replay
    provider then reports usage whose catalog cost is the recorded cost.
    """
    by_model: dict[str, list[Record]] = {}
    for rec in records:
        by_model.setdefault(rec.model, []).append(rec)
    return {m: _fit_one(recs, source) for m, recs in sorted(by_model.items())}


def _fit_one(recs: list[Record], source: str) -> ModelPrice:
    sxx = sum(r.tokens_in**2 for r in recs)
    syy = sum(r.tokens_out**2 for r in recs)
    sxy = sum(r.tokens_in * r.tokens_out for r in recs)
    sxc = sum(r.tokens_in * r.cost_usd for r in recs)
    syc = sum(r.tokens_out * r.cost_usd for r in recs)
    det = sxx * syy - sxy * sxy
    if det > 1e-9 * max(sxx * syy, 1.0):
        a = (sxc * syy - syc * sxy) / det
        b = (syc * sxx - sxc * sxy) / det
        if a >= 0 and b >= 0:
            return ModelPrice(_round(a * 1e6), _round(b * 1e6), source)
    tokens = sum(r.tokens_in + r.tokens_out for r in recs)
    cost = sum(r.cost_usd for r in recs)
    blended = _round(cost / tokens * 1e6) if tokens else 0.0
    return ModelPrice(blended, blended, source)


def _round(price: float) -> float:
    """Six significant digits: drops the float noise of the fit (2.500000000000005 -> 2.5)."""
    return float(f"{price:.6g}")
