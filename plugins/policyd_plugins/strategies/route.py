"""``route``: a learned pre-generation router in front of a cheap-first cascade; ``learned-gate``.

Before any call, the router file (``policyd router train``) scores the request with the
probability that the cheap model fails where the strong one succeeds. At or above the
threshold the request goes straight to ``strong`` (skipping the cheap call a cascade
always pays); below it, it climbs ``rungs`` exactly as ``fail-fast`` does, each rung's
answer judged by its gate (the post-generation signal only a cascade has). The file is
JSON, loaded without pickle and scored in pure Python: serving needs no scikit-learn.
The ``learned-gate`` validator judges a rung's answer with the same file's post-generation
model, combining what the router knew with what only the answer shows.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policyd.api import (
    AttemptRole,
    Effort,
    EffortParam,
    ExplainContext,
    Message,
    Outcome,
    OutcomeStatus,
    PlanStep,
    Role,
    StrategyContext,
    StrategySpec,
    ValidatorRef,
    ValidatorSpec,
    Verdict,
    VerdictKind,
)
from policyd_plugins.strategies.fail_fast import Rung, rung_window_s
from policyd_plugins.strategies.gated import Planned, climb, estimate_ladder

if TYPE_CHECKING:  # the router file's code loads with the first router (docs/deploy.md, "Start-up")
    from policyd.api import Router


class RouteParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    router: str
    """Path of the router file (relative paths: to the daemon's working directory)."""
    threshold: float | None = Field(default=None, ge=0)
    """Route to ``strong`` when the score (0..1) reaches this; default: the file's fitted threshold.
    Above 1 never routes (the cascade alone); 0 always does."""
    strong: str
    strong_effort: EffortParam = Effort.OFF
    rungs: list[Rung] = Field(min_length=1)
    """The cascade below the threshold, cheapest first (as ``fail-fast``'s rungs)."""
    gate: ValidatorRef | None = None
    """The gate of every rung that names none."""

    @model_validator(mode="after")
    def _valid(self) -> RouteParams:
        last = len(self.rungs) - 1
        for i, rung in enumerate(self.rungs):
            if rung.ungated and i != last:
                raise ValueError(f"rungs[{i}].ungated: only the last rung may be ungated")
            if not rung.ungated and rung.gate is None and self.gate is None:
                raise ValueError(f"rungs[{i}].gate: every rung needs a gate (or set the plan's gate)")
        try:
            router_file(self.router)
        except Exception as exc:  # the file's own error names the key
            raise ValueError(f"router: {exc}") from None
        return self

    def gate_of(self, rung: Rung) -> ValidatorRef | None:
        return None if rung.ungated else rung.gate or self.gate

    def cut(self) -> float:
        return router_file(self.router).threshold if self.threshold is None else self.threshold


def router_file(path: str) -> Router:
    """The parsed router, reread only when the file changes."""
    p = Path(path)
    try:
        stamp = p.stat().st_mtime_ns
    except OSError as exc:
        raise ValueError(f"cannot read {p}: {exc.strerror or exc}") from None
    return _load(os.fspath(p), stamp)


@lru_cache(maxsize=32)
def _load(path: str, stamp: int) -> Router:
    from policyd.api import load_router

    return load_router(path)


def score_of(ctx: StrategyContext, params: RouteParams) -> float:
    request = ctx.request
    prompt = next((m.content for m in reversed(request.messages) if m.role is Role.USER), "")
    return router_file(params.router).score(prompt, request.task, request.tenant)


def planned(p: RouteParams, rungs: list[Rung]) -> list[Planned]:
    return [Planned("rung" if i == 0 else "escalate", r.model, r.effort, p.gate_of(r)) for i, r in enumerate(rungs)]


async def run_route(ctx: StrategyContext) -> Outcome:
    p: RouteParams = ctx.params
    if score_of(ctx, p) >= p.cut() and ctx.allowed(p.strong):
        result = await ctx.call(p.strong, role=AttemptRole.ANSWER, effort=p.strong_effort, final=True)
        if result.response is not None:
            return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED, result.response.message)
    rungs = [r for r in p.rungs if ctx.allowed(r.model)]
    return await climb(ctx, planned(p, rungs), lambda i, left: rung_window_s(ctx, rungs[i], left))


def describe_route(ectx: ExplainContext) -> list[PlanStep]:
    p: RouteParams = ectx.params
    direct, _, _ = estimate_ladder(ectx, [Planned("route", p.strong, p.strong_effort)])
    cascade, _, _ = estimate_ladder(ectx, planned(p, p.rungs))
    return [*direct, *cascade]


def cost_route(ectx: ExplainContext) -> tuple[float, float]:
    p: RouteParams = ectx.params
    _, s_best, s_worst = estimate_ladder(ectx, [Planned("route", p.strong, p.strong_effort)])
    _, c_best, c_worst = estimate_ladder(ectx, planned(p, p.rungs))
    return min(s_best, c_best), max(s_worst, c_worst)


SPEC = StrategySpec(
    name="route",
    run=run_route,
    params=RouteParams,
    models=lambda p: list(dict.fromkeys([*(r.model for r in p.rungs), p.strong])),
    validators=lambda p: [g for g in (p.gate_of(r) for r in p.rungs) if g is not None],
    describe=describe_route,
    best_worst_usd=cost_route,
)


# ---------------------------------------------------------------- the learned gate


class LearnedGateParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    router: str
    """A router file with a ``post`` model (``policyd router train`` writes one)."""
    threshold: float | None = Field(default=None, ge=0)
    """Reject (escalate) when P(the answer is wrong) reaches this; default: the file's."""

    @model_validator(mode="after")
    def _has_post(self) -> LearnedGateParams:
        try:
            router = router_file(self.router)
        except Exception as exc:
            raise ValueError(f"router: {exc}") from None
        if router.post is None:
            raise ValueError(f"router: {self.router} has no post-generation model (post)")
        return self


class LearnedGate:
    """Judges the cheap answer with the router file's post-generation model: request and answer words,
    arithmetic checks, length and log-probabilities combined in one learned score."""

    needs_logprobs = True

    def __init__(self, params: LearnedGateParams) -> None:
        self.params = params

    async def __call__(self, ctx: StrategyContext, draft: Message) -> Verdict:
        router = router_file(self.params.router)
        post = router.post
        assert post is not None  # checked when the policy loaded
        request = ctx.request
        prompt = next((m.content for m in reversed(request.messages) if m.role is Role.USER), "")
        score = post.score(router.vectorizer, prompt, draft.content, ctx.logprobs_of(draft))
        cut = post.threshold if self.params.threshold is None else self.params.threshold
        if score >= cut:
            return Verdict(VerdictKind.REJECT, reason=f"learned gate: P(wrong) {score:.3f} >= {cut!r}")
        return Verdict(VerdictKind.ACCEPT, reason=f"learned gate: P(wrong) {score:.3f} < {cut!r}")


def build_learned_gate(ref: ValidatorRef, params: LearnedGateParams) -> LearnedGate:
    return LearnedGate(params)


GATE_SPEC = ValidatorSpec(name="learned-gate", factory=build_learned_gate, params=LearnedGateParams)
