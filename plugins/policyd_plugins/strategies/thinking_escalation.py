"""``thinking-escalation``: thinking as an ops knob, low by default, raised only when needed.

One model (or a family, via ``models_by_effort``) climbs an effort ladder. The
starting level comes from the request's stakes (critical starts higher); a failed
gate, or a failed call, moves one level up. Effort shows on every attempt and is
part of the call, hence of the cache key. Without a gate there is one call, at the
stakes' level.
"""

from __future__ import annotations

import itertools

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policyd.api import (
    Effort,
    EffortParam,
    ExplainContext,
    Outcome,
    Stakes,
    StrategyContext,
    StrategySpec,
    ValidatorRef,
)
from policyd_plugins.strategies.gated import Planned, climb, ladder_explainers

DEFAULT_START = {
    Stakes.LOW: Effort.OFF,
    Stakes.NORMAL: Effort.OFF,
    Stakes.HIGH: Effort.LOW,
    Stakes.CRITICAL: Effort.MEDIUM,
}


class ThinkingEscalationParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    models_by_effort: dict[EffortParam, str] = {}
    """A family: another model for some levels (e.g. the larger sibling at high)."""
    levels: list[EffortParam] = Field(default=[Effort.OFF, Effort.LOW, Effort.MEDIUM, Effort.HIGH], min_length=1)
    """The ladder, strictly rising."""
    start: dict[Stakes, EffortParam] = DEFAULT_START
    """Starting effort per stakes; the first level at or above it is used."""
    gate: ValidatorRef | None = None

    @field_validator("levels")
    @classmethod
    def _rising(cls, value: list[Effort]) -> list[Effort]:
        if any(b.rank <= a.rank for a, b in itertools.pairwise(value)):
            raise ValueError("levels must rise strictly (e.g. [off, low, medium, high])")
        return value

    @model_validator(mode="after")
    def _family_levels(self) -> ThinkingEscalationParams:
        stray = [e.value for e in self.models_by_effort if e not in self.levels]
        if stray:
            raise ValueError(f"models_by_effort: {', '.join(stray)} not in levels {[e.value for e in self.levels]}")
        return self

    def model_at(self, level: Effort) -> str:
        return self.models_by_effort.get(level, self.model)

    def models(self) -> list[str]:
        return list(dict.fromkeys([self.model, *(self.model_at(level) for level in self.levels)]))

    def ladder(self, stakes: Stakes) -> list[Effort]:
        """The levels this request climbs: from the stakes' starting level to the top."""
        floor = self.start.get(stakes, self.levels[0])
        for i, level in enumerate(self.levels):
            if level.rank >= floor.rank:
                return self.levels[i:] if self.gate is not None else [level]
        return self.levels[-1:]


def planned(p: ThinkingEscalationParams, levels: list[Effort]) -> list[Planned]:
    return [
        Planned(
            "rung" if i == 0 else "escalate",
            p.model_at(e),
            e,
            p.gate,
            reason=f"effort {e.value}"
            + (": where the stakes start the climb" if i == 0 else ": when the lower effort fails its gate"),
        )
        for i, e in enumerate(levels)
    ]


async def run_thinking_escalation(ctx: StrategyContext) -> Outcome:
    p: ThinkingEscalationParams = ctx.params
    levels = [e for e in p.ladder(ctx.request.stakes) if ctx.allowed(p.model_at(e))]
    return await climb(ctx, planned(p, levels))


describe_thinking_escalation, cost_thinking_escalation = ladder_explainers(
    lambda ectx: planned(ectx.params, ectx.params.ladder(ectx.request.stakes))
)


def warn_thinking_escalation(ectx: ExplainContext) -> list[str]:
    p: ThinkingEscalationParams = ectx.params
    flat = [m for m in p.models() if not ectx.catalog[m].thinking]
    if not flat:
        return []
    return [f"{', '.join(flat)} cannot think: raising its effort changes nothing but the cache key"]


SPEC = StrategySpec(
    name="thinking-escalation",
    run=run_thinking_escalation,
    params=ThinkingEscalationParams,
    models=lambda p: p.models(),
    validators=lambda p: [p.gate] if p.gate else [],
    describe=describe_thinking_escalation,
    best_worst_usd=cost_thinking_escalation,
    warnings=warn_thinking_escalation,
)
