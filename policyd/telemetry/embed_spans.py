"""One ``embeddings {model}`` span per model an Embed request tried, under the decision span, and its metrics.

The Embedder (``policyd.engine.embed``) calls :meth:`EmbedSpans.start` before sending a
model's batch and the returned function with the model's Attempt when it is done; the span
carries the GenAI attributes (``gen_ai.operation.name=embeddings``, provider, request model,
``gen_ai.embeddings.dimension.count``, input tokens) and policyd's (model, role, texts sent,
texts from the cache, cost, error summary: never the upstream's own words, never the texts).
The GenAI client metrics (``gen_ai.client.operation.duration`` and input
``gen_ai.client.token.usage``) count the upstream work, with ``gen_ai.operation.name=embeddings``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from policyd.engine.turn import Turn
from policyd.telemetry import semconv as sc
from policyd.telemetry.metrics import Instruments
from policyd.types import Attempt, ModelSpec


class EmbedSpans:
    def __init__(self, tracer: trace.Tracer, instruments: Instruments | None = None, *, tracing: bool = True) -> None:
        self.tracer = tracer
        self.instruments = instruments
        self.tracing = tracing

    def start(
        self, turn: Turn, model: ModelSpec, texts: int, cached: int, dimensions: int
    ) -> Callable[[Attempt], None]:
        inst = turn.config.providers.get(model.provider)
        kind = inst.kind if inst is not None else model.provider
        gen_ai = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_EMBEDDINGS,
            sc.GEN_AI_PROVIDER_NAME: sc.gen_ai_provider_name(kind),
            sc.GEN_AI_REQUEST_MODEL: model.upstream,
        }
        span = (
            self.tracer.start_span(
                sc.call_span_name(sc.OPERATION_EMBEDDINGS, model.upstream),
                kind=SpanKind.CLIENT,
                attributes={
                    **gen_ai,
                    sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: dimensions,
                    sc.POLICYD_MODEL: model.id,
                    sc.POLICYD_PROVIDER: model.provider,
                    sc.POLICYD_EMBED_TEXTS: texts,
                    sc.POLICYD_EMBED_CACHED_TEXTS: cached,
                },
            )
            if self.tracing
            else None
        )
        started = time.perf_counter()

        def finish(attempt: Attempt) -> None:
            if texts and self.instruments is not None:
                self._measure(gen_ai, attempt, time.perf_counter() - started)
            if span is None:
                return
            span.set_attributes(
                {
                    sc.GEN_AI_USAGE_INPUT_TOKENS: attempt.input_tokens,
                    sc.POLICYD_ROLE: attempt.role.value,
                    sc.POLICYD_ATTEMPT_INDEX: attempt.index,
                    sc.POLICYD_COST_USD: attempt.cost_usd,
                    sc.POLICYD_CACHED: attempt.cached,
                }
            )
            if attempt.error:
                span.set_attribute(sc.POLICYD_ERROR, attempt.error)
                span.set_status(Status(StatusCode.ERROR, attempt.error))
            span.end()

        return finish

    def _measure(self, gen_ai: dict[str, Any], attempt: Attempt, seconds: float) -> None:
        inst = self.instruments
        assert inst is not None
        attrs = {**gen_ai, sc.ERROR_TYPE: "upstream"} if attempt.error else gen_ai
        inst.operation_duration.record(seconds, attrs)
        if attempt.input_tokens:
            inst.token_usage.record(attempt.input_tokens, {**gen_ai, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT})
