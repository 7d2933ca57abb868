"""Embed requests through the same Turn and pipeline as completions.

An :class:`EmbedTurn` is a Turn whose decision is an embedding rule (``strategy: embed``):
admission (rate limit, decision span, budget reservation), settlement and recording
(metrics, ledger, decision log) run unchanged; only the ``run`` step differs. It is
:class:`Embedder.run`:

1. the plan's model, then each fallback, until one answers for **every** text: a
   request never mixes two models' vectors, so a fallback re-embeds the whole batch;
2. per model: constraints and dimensions, the per-text cache (a hit costs nothing),
   money (the missing texts' estimated price must fit the cost cap), deadline, then
   the upstream in batches within the provider's limit (``embed_calls``);
3. each model tried is one Attempt; the vectors that arrived are cached, even from a
   model that failed half-way (they are that model's real vectors).
"""

from __future__ import annotations

import array
import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from policyd.embedding import (
    EmbedCall,
    EmbeddingProvider,
    EmbedParams,
    EmbedRequest,
    EmbedResult,
    dimensions_problem,
    model_dimensions,
)
from policyd.engine import tokens
from policyd.engine.embed_calls import ModelBatch, embed_with_model
from policyd.engine.plan_match import Match, match_request, model_allowed
from policyd.engine.retry import RetryLayer
from policyd.engine.turn import NO_EVENTS, Events, Runtime, Turn
from policyd.errors import FailedPrecondition, NotFound
from policyd.ids import new_id
from policyd.plugin.specs import Registered
from policyd.types import (
    Attempt,
    AttemptRole,
    CacheMode,
    Effort,
    Explanation,
    ModelSpec,
    Outcome,
    OutcomeStatus,
    PlanStep,
    Request,
)

MIN_CALL_S = 0.005


class VectorCache(Protocol):
    """Per-text vectors by (tenant, model, dimensions, text); ``policyd.cache.embeddings`` implements it."""

    async def get_many(
        self, tenant: str, model: ModelSpec, dimensions: int, texts: Sequence[str]
    ) -> list[array.array[float] | None]: ...

    async def put_many(
        self,
        tenant: str,
        model: ModelSpec,
        dimensions: int,
        items: Sequence[tuple[str, array.array[float]]],
        ttl_s: float | None,
    ) -> None: ...


class ModelSpans(Protocol):
    """Telemetry of each model an Embed request sends texts to (``policyd.telemetry.embed_spans``)."""

    def start(
        self, turn: Turn, model: ModelSpec, texts: int, cached: int, dimensions: int
    ) -> Callable[[Attempt], None]: ...


def as_request(request: EmbedRequest) -> Request:
    """The completion-shaped view of an embed request that admission steps and observers read."""
    return Request(
        request_id=request.request_id,
        messages=(),
        task=request.task,
        labels=request.labels,
        constraints=request.constraints,
        cache_mode=request.cache_mode,
        policy=request.policy,
        tenant=request.tenant,
        deadline=request.deadline,
    )


def text_usd(model: ModelSpec, texts: Sequence[str]) -> float:
    return model.cost_usd(sum(tokens.text_tokens(t) for t in texts), 0)


class EmbedTurn(Turn):
    """A Turn decided on the embedding rules of the request's policy."""

    def __init__(
        self, runtime: Runtime, registered: Registered, request: EmbedRequest, events: Events | None = None
    ) -> None:
        super().__init__(runtime, registered, as_request(request), None, events or NO_EVENTS)
        self.embed_request = request
        self.vectors: tuple[array.array[float], ...] = ()
        self.cached: tuple[bool, ...] = ()
        self.model_id = ""
        self.dims = 0
        self.input_tokens = 0

    def result(self, outcome: Outcome) -> EmbedResult:
        """What Embed answers: the outcome and, when it succeeded, one vector per text from one model."""
        if not outcome.status.is_success:
            return EmbedResult(outcome=outcome)
        return EmbedResult(outcome, self.vectors, self.cached, self.model_id, self.dims, self.input_tokens)

    @property
    def match(self) -> Match:
        match = self._match
        if match is None:
            match = self._match = match_request(self.runtime.config, self.request, embedding=True)
        return match

    @property
    def explanation(self) -> Explanation:
        explanation = self._explanation
        if explanation is None:
            explanation = self._explanation = self._explain()
        return explanation

    def _explain(self) -> Explanation:
        params: EmbedParams = self.match.plan.params
        catalog = self.runtime.config.catalog
        texts = self.embed_request.texts
        steps = []
        for i, model_id in enumerate((params.model, *params.fallback)):
            model = catalog[model_id]
            steps.append(
                PlanStep(
                    role="embed" if i == 0 else "fallback", model=model_id, estimated_cost_usd=text_usd(model, texts)
                )
            )
        warnings = tuple(
            f"{s.model} excluded by {why}"
            for s in steps
            if (why := model_allowed(catalog[s.model], self.request.constraints)) is not None
        )
        return Explanation(
            policy=self.match.policy.name,
            rule=self.match.rule.name,
            strategy=self.match.plan.strategy,
            reason="; ".join((*self.match.skipped, self.match.reason)),
            models=tuple(s.model for s in steps),
            steps=tuple(steps),
            best_usd=steps[0].estimated_cost_usd,
            worst_usd=sum(s.estimated_cost_usd for s in steps),
            warnings=warnings,
            policy_version=self.runtime.config.version,
        )

    @property
    def dimensions(self) -> int | None:
        params: EmbedParams = self.match.plan.params
        return self.embed_request.dimensions or params.dimensions


@dataclass
class _Run:
    """The state of one embed run: attempts, money and why the last model failed."""

    turn: EmbedTurn
    clock: Callable[[], float]
    attempts: list[Attempt] = field(default_factory=list)
    spent_usd: float = 0.0
    saved_usd: float = 0.0
    over_budget: bool = False
    out_of_time: bool = False
    refusals: list[str] = field(default_factory=list)
    """Models that could not serve the request at all (constraints, dimensions, no embedding API)."""

    def record(self, role: AttemptRole, model: ModelSpec, **fields: Any) -> Attempt:
        """Record an attempt; returns it as observers see it (redacted)."""
        attempt = Attempt(
            index=len(self.attempts), role=role, model=model.id, provider=model.provider, effort=Effort.OFF, **fields
        )
        self.attempts.append(attempt)
        self.turn.attempts.append(attempt)
        self.turn.record(attempt)
        redact = self.turn.events.redact
        return redact(attempt) if redact is not None else attempt

    def outcome(self, status: OutcomeStatus) -> Outcome:
        request = self.turn.request
        explanation = self.turn.explanation
        if self.turn.notes:
            explanation = replace(explanation, warnings=(*explanation.warnings, *self.turn.notes))
        redact = self.turn.events.redact
        attempts = tuple(redact(a) for a in self.attempts) if redact is not None else tuple(self.attempts)
        return Outcome(
            request_id=request.request_id,
            status=status,
            output=None,
            attempts=attempts,
            explanation=explanation,
            total_cost_usd=self.spent_usd,
            saved_usd=self.saved_usd,
            tenant=request.tenant,
            task=request.task,
            decision_id=new_id(),
        )


class Embedder:
    """The ``run`` step of Embed turns: the cache it reads, and the retry layer whose breakers it shares."""

    def __init__(
        self,
        cache: VectorCache | None = None,
        retry: RetryLayer | None = None,
        *,
        default_ttl_s: float | None = None,
        spans: ModelSpans | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self.retry = retry or RetryLayer()
        self.default_ttl_s = default_ttl_s
        self.spans = spans
        self.clock = clock

    async def run(self, turn: Turn) -> Outcome:
        assert isinstance(turn, EmbedTurn)
        run = _Run(turn, self.clock)
        params: EmbedParams = turn.match.plan.params
        for i, model_id in enumerate((params.model, *params.fallback)):
            model = turn.config.catalog[model_id]
            role = AttemptRole.ANSWER if i == 0 else AttemptRole.ESCALATE
            if await self._try(run, model, role, params):
                return run.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED)
            if run.out_of_time:
                break
        if len(run.refusals) == len(run.attempts):
            rule = turn.match.rule.name
            raise FailedPrecondition(f"no model of rule {rule!r} can serve this request: {'; '.join(run.refusals)}")
        status = (
            OutcomeStatus.DEADLINE_EXCEEDED
            if run.out_of_time
            else OutcomeStatus.BUDGET_EXHAUSTED
            if run.over_budget
            else OutcomeStatus.UPSTREAM_FAILED
        )
        return run.outcome(status)

    async def _try(self, run: _Run, model: ModelSpec, role: AttemptRole, params: EmbedParams) -> bool:
        """One model for the whole batch; True when every text has its vector (then on the turn)."""
        turn = run.turn
        refused = self._refused(turn, model)
        if refused:
            run.refusals.append(refused)
            run.record(role, model, error=refused)
            return False
        dims = turn.dimensions or model_dimensions(model)
        texts = tuple(dict.fromkeys(turn.embed_request.texts))  # each distinct text once
        found = await self._cached(turn, model, dims, texts)
        missing = [t for t in texts if t not in found]
        if missing and turn.request.cache_mode is CacheMode.ONLY_IF_CACHED:
            raise NotFound(f"{len(missing)} of {len(texts)} texts are not cached for {model.id} (only-if-cached)")
        worst = text_usd(model, missing)
        if run.spent_usd + worst > turn.max_cost_usd + 1e-12:
            run.over_budget = True
            left = turn.max_cost_usd - run.spent_usd
            run.record(role, model, error=f"may cost ${worst:.6f}; ${left:.6f} of ${turn.max_cost_usd:.6f} left")
            return False
        saved = text_usd(model, [t for t in texts if t in found])
        started = self.clock()
        finish = self.spans.start(turn, model, len(missing), len(found), dims) if self.spans is not None else None
        try:
            batch = await self._fetch(run, model, dims, missing, params) if missing else ModelBatch()
        except BaseException:
            if finish is not None:  # cancelled (the caller went away): the span still ends
                finish(Attempt(len(run.attempts), role, model.id, model.provider, Effort.OFF, error="cancelled"))
            raise
        latency_ms = (self.clock() - started) * 1000
        got = {missing[i]: v for i, v in batch.vectors.items()}
        await self._store(turn, model, dims, got)
        cost = model.cost_usd(batch.input_tokens, 0)
        run.spent_usd += cost
        if batch.error is not None or run.out_of_time:
            error = batch.error.summary if batch.error is not None else "the request's deadline expired"
            attempt = run.record(
                role,
                model,
                input_tokens=batch.input_tokens,
                cost_usd=cost,
                latency_ms=latency_ms,
                error=error,
                error_detail=batch.error.detail if batch.error is not None else "",
                usage_estimated=batch.estimated,
            )
            if finish is not None:
                finish(attempt)
            return False
        run.saved_usd += saved
        attempt = run.record(
            role,
            model,
            input_tokens=batch.input_tokens,
            cost_usd=cost,
            latency_ms=latency_ms,
            cached=not missing,
            saved_usd=saved,
            usage_estimated=batch.estimated,
            finish_reason="stop",
        )
        if finish is not None:
            finish(attempt)
        vectors = {**found, **got}
        order = turn.embed_request.texts
        turn.vectors = tuple(vectors[t] for t in order)
        turn.cached = tuple(t in found for t in order)
        turn.model_id, turn.dims, turn.input_tokens = model.id, dims, batch.input_tokens
        return True

    def _refused(self, turn: EmbedTurn, model: ModelSpec) -> str | None:
        """Why this model cannot serve the request at all (constraints, dimensions, a provider that cannot embed)."""
        excluded = model_allowed(model, turn.request.constraints)
        if excluded is not None:
            return f"excluded by {excluded}"
        problem = dimensions_problem(model, turn.dimensions)
        if problem is not None:
            return problem
        provider = turn.runtime.providers.get(model.provider)
        if provider is None:
            return f"provider {model.provider!r} is not configured"
        if not isinstance(provider, EmbeddingProvider):
            return f"provider {model.provider!r} has no embedding API"
        return None

    async def _cached(
        self, turn: EmbedTurn, model: ModelSpec, dims: int, texts: Sequence[str]
    ) -> dict[str, array.array[float]]:
        if self.cache is None or not turn.plan.cache_enabled:
            return {}
        if turn.request.cache_mode in (CacheMode.BYPASS, CacheMode.REFRESH):
            return {}
        hits = await self.cache.get_many(turn.request.tenant, model, dims, texts)
        return {t: v for t, v in zip(texts, hits, strict=True) if v is not None}

    async def _store(self, turn: EmbedTurn, model: ModelSpec, dims: int, got: dict[str, array.array[float]]) -> None:
        if self.cache is None or not got or not turn.plan.cache_enabled:
            return
        if turn.request.cache_mode is CacheMode.BYPASS:
            return
        ttl = turn.plan.cache_ttl_s or self.default_ttl_s
        await self.cache.put_many(turn.request.tenant, model, dims, list(got.items()), ttl)

    async def _fetch(self, run: _Run, model: ModelSpec, dims: int, texts: list[str], params: EmbedParams) -> ModelBatch:
        turn = run.turn
        deadline = turn.request.deadline
        timeout_s = None
        if deadline is not None:
            timeout_s = deadline - self.clock() - 0.010
            if timeout_s < MIN_CALL_S:
                run.out_of_time = True
                return ModelBatch()
        provider = turn.runtime.providers[model.provider]
        assert isinstance(provider, EmbeddingProvider)
        own = model_dimensions(model)
        call = EmbedCall(model, tuple(texts), dims if dims != own else None, turn.request.tenant, timeout_s)
        try:
            async with asyncio.timeout(timeout_s):
                return await embed_with_model(
                    provider,
                    call,
                    self.retry,
                    turn.config.raw.retries,
                    concurrency=params.concurrency,
                    dimensions=dims,
                )
        except TimeoutError:
            run.out_of_time = True
            return ModelBatch()
