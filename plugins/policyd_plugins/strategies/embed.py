"""The ``embed`` plan: names an embedding model and its fallbacks for Embed requests.

The engine runs these plans itself (``policyd.engine.embed``): a plan's model, then
each fallback re-embedding the whole batch. Completion requests never match an
``embed`` rule, so ``run`` here only answers a caller that invokes the strategy directly.
"""

from __future__ import annotations

from policyd.api import (
    EMBED_STRATEGY,
    EmbedParams,
    ExplainContext,
    FailedPrecondition,
    Outcome,
    PlanStep,
    StrategyContext,
    StrategySpec,
)


async def run_embed(ctx: StrategyContext) -> Outcome:
    raise FailedPrecondition(f"an {EMBED_STRATEGY!r} plan serves Embed requests, not completions")


def describe_embed(ectx: ExplainContext) -> list[PlanStep]:
    params: EmbedParams = ectx.params
    return [
        PlanStep(role="embed" if i == 0 else "fallback", model=m)
        for i, m in enumerate((params.model, *params.fallback))
    ]


SPEC = StrategySpec(
    name=EMBED_STRATEGY,
    run=run_embed,
    params=EmbedParams,
    models=lambda p: [p.model, *p.fallback],
    describe=describe_embed,
)
