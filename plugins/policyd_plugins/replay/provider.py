"""Serves the recorded answer for (item, model, variant) with usage that reproduces the recorded cost.

The item comes from the request label ``replay.item`` (``policyd eval`` sets it); a
request without it is matched by its last user message against the recorded prompts.
The model is the catalog entry's ``upstream`` name, the variant its effort and sample
index (``policyd.eval.records.variant_of``). A log-prob confidence signal is returned as
the answer's log-probabilities, so logprob gates read what a live upstream would give.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from policyd.api import DeltaSink, Message, ModelCall, ModelResponse, ModelSpec, Role, UpstreamError, Usage

if TYPE_CHECKING:  # the recorded-dataset format of `policyd eval`, loaded when a replay provider is used
    from policyd.eval.records import Dataset, Record


class ReplaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    """A dataset name known to ``policyd eval`` or ``jsonl:PATH`` of recorded records."""
    data: str | None = None
    """The shared data folder (default: as ``policyd eval`` finds it)."""


def usage_for(rec: Record, model: ModelSpec) -> Usage:
    """The recorded tokens when the catalog prices reproduce the recorded cost; else tokens that do."""
    tin, tout = rec.tokens_in, rec.tokens_out
    if math.isclose(model.cost_usd(tin, tout), rec.cost_usd, rel_tol=1e-3, abs_tol=1e-12):
        return Usage(input_tokens=tin, output_tokens=tout)
    pin, pout = model.input_usd_per_mtok, model.output_usd_per_mtok
    micro = rec.cost_usd * 1_000_000
    if pout > 0 and micro >= tin * pin:
        tout = round((micro - tin * pin) / pout)
    elif pin > 0:
        tin, tout = round(micro / pin), 0
    return Usage(input_tokens=tin, output_tokens=tout, estimated=True)


class ReplayProvider:
    def __init__(self, name: str, dataset: Dataset) -> None:
        self.name = name
        self.dataset = dataset
        self._by_prompt: dict[str, str] | None = None

    @classmethod
    def from_settings(cls, name: str, settings: ReplaySettings) -> ReplayProvider:
        from policyd.eval.sources import load_dataset

        return cls(name, load_dataset(settings.dataset, Path(settings.data) if settings.data else None))

    def _item(self, call: ModelCall) -> str:
        from policyd.eval.records import ITEM_LABEL

        item = call.labels.get(ITEM_LABEL)
        if item:
            return item
        if self._by_prompt is None:
            self._by_prompt = {}
            for rec in self.dataset.records:
                self._by_prompt.setdefault(rec.prompt, rec.item)
        prompt = next((m.content for m in reversed(call.messages) if m.role is Role.USER), "")
        found = self._by_prompt.get(prompt)
        if found is None:
            raise UpstreamError(
                self.name, f"no recorded item has this prompt (set the {ITEM_LABEL} label)", retryable=False, status=404
            )
        return found

    async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
        from policyd.eval.records import variant_of

        item = self._item(call)
        variant = variant_of(call.effort, call.sample_index)
        rec = self.dataset.index.get((item, call.model.upstream, variant))
        if rec is None:
            raise UpstreamError(
                self.name,
                f"no recorded answer for item {item!r}, model {call.model.upstream!r}, variant {variant!r}",
                retryable=False,
                status=404,
            )
        if on_delta is not None and rec.answer:
            on_delta(rec.answer)
        conf = rec.signals.get("logprob_conf")
        return ModelResponse(
            message=Message(role=Role.ASSISTANT, content=rec.answer),
            usage=usage_for(rec, call.model),
            response_model=f"replay/{rec.model}",
            logprobs=None if conf is None else (conf,),
            latency_ms=rec.latency_ms,
        )

    async def aclose(self) -> None:
        return None
