"""``fail-fast``: an ordered ladder of models, cheapest first, each answer gated.

Each rung has a model, an effort, a share of the deadline and a gate. An error, a
timeout or a failed gate moves to the next rung at once; the first passing answer
wins. Only the last rung may be ungated (its answer is then accepted-unvalidated).
A rung's share is of the time left when it starts, and covers its gate too.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policyd.api import Effort, EffortParam, Outcome, StrategyContext, StrategySpec, ValidatorRef
from policyd_plugins.strategies.gated import Planned, climb, ladder_explainers


class Rung(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    effort: EffortParam = Effort.OFF
    share: float | None = Field(default=None, gt=0, le=1)
    """Share of the time left when the rung starts; default: an even split over the rungs left."""
    timeout_ms: int | None = Field(default=None, gt=0)
    """A hard cap on the rung's time, answer and gate together."""
    gate: ValidatorRef | None = None
    """This rung's gate; default: the plan's ``gate``."""
    ungated: bool = False
    """The last rung may answer without a gate."""


class FailFastParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rungs: list[Rung] = Field(min_length=1)
    gate: ValidatorRef | None = None
    """The gate of every rung that names none."""

    @model_validator(mode="after")
    def _gated(self) -> FailFastParams:
        last = len(self.rungs) - 1
        for i, rung in enumerate(self.rungs):
            if rung.ungated and i != last:
                raise ValueError(f"rungs[{i}].ungated: only the last rung may be ungated")
            if not rung.ungated and rung.gate is None and self.gate is None:
                raise ValueError(f"rungs[{i}].gate: every rung needs a gate (or set the plan's gate)")
        return self

    def gate_of(self, rung: Rung) -> ValidatorRef | None:
        return None if rung.ungated else rung.gate or self.gate

    def validators(self) -> list[ValidatorRef]:
        return [g for g in (self.gate_of(r) for r in self.rungs) if g is not None]


def rung_window_s(ctx: StrategyContext, rung: Rung, rungs_left: int) -> float | None:
    """Seconds the rung may take: its share of what is left, capped by its timeout."""
    remaining = ctx.remaining_s()
    window = None
    if remaining is not None:
        share = 1.0 if rungs_left <= 1 else rung.share or 1.0 / rungs_left
        window = remaining * share
    if rung.timeout_ms is not None:
        cap = rung.timeout_ms / 1000
        window = cap if window is None else min(window, cap)
    return window


def planned(p: FailFastParams, rungs: list[Rung]) -> list[Planned]:
    return [
        Planned(
            "rung" if i == 0 else "escalate",
            r.model,
            r.effort,
            p.gate_of(r),
            reason="rung 1: the cheapest first"
            if i == 0
            else f"rung {i + 1}: when rung {i} errs, times out or fails its gate",
        )
        for i, r in enumerate(rungs)
    ]


async def run_fail_fast(ctx: StrategyContext) -> Outcome:
    p: FailFastParams = ctx.params
    rungs = [r for r in p.rungs if ctx.allowed(r.model)]
    return await climb(ctx, planned(p, rungs), lambda i, left: rung_window_s(ctx, rungs[i], left))


describe_fail_fast, cost_fail_fast = ladder_explainers(lambda ectx: planned(ectx.params, ectx.params.rungs))


SPEC = StrategySpec(
    name="fail-fast",
    run=run_fail_fast,
    params=FailFastParams,
    models=lambda p: list(dict.fromkeys(r.model for r in p.rungs)),
    validators=lambda p: p.validators(),
    describe=describe_fail_fast,
    best_worst_usd=cost_fail_fast,
)
