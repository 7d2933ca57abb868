"""The two plain strategies: ``single`` (one model) and ``fallback`` (next model on error)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from policyd.api import (
    AttemptRole,
    Effort,
    EffortParam,
    ExplainContext,
    Outcome,
    OutcomeStatus,
    PlanStep,
    StrategyContext,
)
from policyd_plugins.strategies.gated import even_share_s


class SingleParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    effort: EffortParam = Effort.OFF


async def run_single(ctx: StrategyContext) -> Outcome:
    params: SingleParams = ctx.params
    result = await ctx.call(params.model, role=AttemptRole.ANSWER, effort=params.effort, final=True)
    if result.response is None:
        return ctx.outcome(OutcomeStatus.UPSTREAM_FAILED)
    return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED, result.response.message)


def describe_single(ectx: ExplainContext) -> list[PlanStep]:
    p: SingleParams = ectx.params
    return [PlanStep(role="answer", model=p.model, effort=p.effort, estimated_cost_usd=ectx.estimate_usd(p.model))]


class FallbackParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[str] = Field(min_length=1)
    """Tried in order; the next one only when the previous call failed."""
    effort: EffortParam = Effort.OFF


async def run_fallback(ctx: StrategyContext) -> Outcome:
    """Each model in turn, each within an even share of the time left (``even_share_s``)."""
    params: FallbackParams = ctx.params
    candidates = [m for m in params.models if ctx.allowed(m)]
    for tried, model_id in enumerate(candidates):
        role = AttemptRole.ANSWER if tried == 0 else AttemptRole.ESCALATE
        with ctx.time_box(even_share_s(ctx, len(candidates) - tried)):
            result = await ctx.call(model_id, role=role, effort=params.effort, final=True)
        if result.response is not None:
            return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED, result.response.message)
    return ctx.outcome(OutcomeStatus.UPSTREAM_FAILED)


def describe_fallback(ectx: ExplainContext) -> list[PlanStep]:
    p: FallbackParams = ectx.params
    return [
        PlanStep(
            role="answer" if i == 0 else "fallback",
            model=m,
            effort=p.effort,
            estimated_cost_usd=ectx.estimate_usd(m),
        )
        for i, m in enumerate(p.models)
    ]
