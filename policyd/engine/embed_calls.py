"""One model's embedding of a batch: split to the provider's limits, sent with retries and breakers.

Texts are split into upstream requests of at most the provider's ``max_texts`` and
``max_tokens`` (estimated), sent ``concurrency`` at a time. Each request goes through
the daemon's :class:`~policyd.engine.retry.RetryLayer` rules (retry budget, jittered
backoff, Retry-After, the per-provider circuit breaker) exactly like a completion.
When one request fails for good, the others are cancelled and the model has failed:
the chunks that did arrive are handed back so they can still be cached.
"""

from __future__ import annotations

import array
import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from policyd.config.retries import RetriesConfig
from policyd.embedding import EmbedCall, EmbeddingProvider, EmbedResponse
from policyd.engine import tokens
from policyd.engine.retry import Breaker, RetryLayer
from policyd.errors import UpstreamError
from policyd.types import ModelSpec


@dataclass(frozen=True, slots=True)
class EmbedLimits:
    """What one upstream embedding request may carry."""

    max_texts: int
    max_tokens: int | None = None


def limits_of(provider: EmbeddingProvider, model: ModelSpec) -> EmbedLimits:
    limit = provider.embed_batch_limit(model)
    return EmbedLimits(max(1, limit))


def chunks(texts: Sequence[str], limits: EmbedLimits, max_tokens: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` slices of ``texts`` within ``max_texts`` and the estimated token cap."""
    cap = max_tokens or limits.max_tokens
    out: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, text in enumerate(texts):
        cost = tokens.text_tokens(text)
        full = i - start >= limits.max_texts or (cap is not None and used + cost > cap and i > start)
        if full:
            out.append((start, i))
            start, used = i, 0
        used += cost
    if start < len(texts):
        out.append((start, len(texts)))
    return out


@dataclass
class ModelBatch:
    """What one model produced for a batch: vectors by position, tokens, and the requests sent."""

    vectors: dict[int, array.array[float]] = field(default_factory=dict)
    input_tokens: int = 0
    estimated: bool = False
    requests: int = 0
    error: UpstreamError | None = None


async def embed_with_model(
    provider: EmbeddingProvider,
    call: EmbedCall,
    retry: RetryLayer,
    settings: RetriesConfig,
    *,
    concurrency: int,
    dimensions: int = 0,
    max_tokens: int | None = None,
) -> ModelBatch:
    """Embed every text of ``call`` with its model; ``error`` is set when the model failed for good.

    ``dimensions``: the length every vector must have (0: not checked).
    """
    batch = ModelBatch()
    spans = chunks(call.texts, limits_of(provider, call.model), max_tokens)
    gate = asyncio.Semaphore(concurrency)
    deadline = None if call.timeout_s is None else time.monotonic() + call.timeout_s

    async def one(start: int, end: int) -> None:
        async with gate:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            part = EmbedCall(call.model, call.texts[start:end], call.dimensions, call.tenant, left)
            response = await _retrying(provider, part, retry, settings, batch)
        if len(response.vectors) != end - start:
            raise UpstreamError(
                call.model.provider,
                f"malformed response: {len(response.vectors)} vectors for {end - start} texts",
                retryable=False,
            )
        wrong = next((len(v) for v in response.vectors if dimensions and len(v) != dimensions), None)
        if wrong is not None:
            raise UpstreamError(
                call.model.provider,
                f"malformed response: a vector of {wrong} dimensions from {call.model.id} (expected {dimensions})",
                retryable=False,
            )
        for offset, vec in enumerate(response.vectors):
            batch.vectors[start + offset] = vec
        batch.input_tokens += response.input_tokens
        batch.estimated = batch.estimated or response.usage_estimated

    try:
        async with asyncio.TaskGroup() as group:
            for start, end in spans:
                group.create_task(one(start, end))
    except* UpstreamError as failed:
        batch.error = _first(failed.exceptions)
    return batch


def _first(errors: Sequence[BaseException]) -> UpstreamError:
    first = errors[0]
    assert isinstance(first, UpstreamError)
    return first


async def _retrying(
    provider: EmbeddingProvider, call: EmbedCall, layer: RetryLayer, cfg: RetriesConfig, batch: ModelBatch
) -> EmbedResponse:
    """One upstream request under the retry layer's rules (shared budget and breakers)."""
    model = call.model
    circuit = model.provider if cfg.breaker.scope == "provider" else f"{model.provider}/{model.upstream}"
    breaker = layer.breakers.setdefault(circuit, Breaker())
    deadline = None if call.timeout_s is None else layer.clock() + call.timeout_s
    layer.in_flight += 1
    holding = False
    attempt = 0
    try:
        while True:
            attempt += 1
            probe = layer.admit(breaker, model.provider, cfg)
            timeout_s = None if deadline is None else max(0.0, deadline - layer.clock())
            layer.upstream_requests += 1
            batch.requests += 1
            try:
                response = await provider.embed(_with_timeout(call, timeout_s))
            except UpstreamError as exc:
                delay = layer.after_failure(exc, breaker, cfg, attempt, probe, False, holding, deadline)
                if not holding:
                    holding = True
                    layer.retrying += 1
                await layer.sleep(delay)
                continue
            except BaseException:
                if probe:
                    breaker.probing = False
                raise
            breaker.failures, breaker.probing = 0, False
            return response
    finally:
        layer.in_flight -= 1
        if holding:
            layer.retrying -= 1


def _with_timeout(call: EmbedCall, timeout_s: float | None) -> EmbedCall:
    return EmbedCall(call.model, call.texts, call.dimensions, call.tenant, timeout_s)
