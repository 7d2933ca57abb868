"""``hedged``: ask a second model when the first has not answered in time; first good answer wins.

The primary model is called at once. If it has not produced a good answer after the
hedge delay (by default its observed p90 latency, so about one request in ten is
hedged), the backup model is called too, and whichever good answer comes first is
returned; the other call is cancelled. A primary that fails early is hedged at once.
Both attempts are on record: the cancelled one as ``cancelled`` with its prompt
charged at list price (the upstream read it), so the cost of hedging shows in the
ledger. A backup the remaining budget cannot pay for is not started.

"Good" means the call succeeded and, when the plan names a ``gate``, the validator
accepted (or repaired) the answer. Hedged answers are not streamed piece by piece:
either model may win, so the answer is sent whole.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

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
    StrategyContext,
    StrategySpec,
    ValidatorRef,
)
from policyd_hedge.latency import LATENCIES

P90 = 0.9


class HedgedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    primary: str
    """Asked first."""
    backup: str
    """Asked too when the primary has no good answer after the hedge delay."""
    effort: EffortParam = Effort.OFF
    delay_ms: int | None = Field(default=None, gt=0)
    """A fixed hedge delay; default: the primary's observed p90 latency."""
    initial_delay_ms: int = Field(default=2_000, gt=0)
    """The delay until ``min_samples`` latencies of the primary have been observed."""
    min_samples: int = Field(default=20, ge=1)
    gate: ValidatorRef | None = None
    """A validator both answers must pass; without one, any answer is good."""

    @model_validator(mode="after")
    def _two_models(self) -> HedgedParams:
        if self.primary == self.backup:
            raise ValueError("backup: must differ from primary (hedging a model with itself)")
        return self


def hedge_delay_s(params: HedgedParams) -> float:
    """Seconds to wait for the primary before asking the backup."""
    if params.delay_ms is not None:
        return params.delay_ms / 1000
    if LATENCIES.count(params.primary) >= params.min_samples:
        p90 = LATENCIES.quantile_ms(params.primary, P90)
        if p90 is not None:
            return p90 / 1000
    return params.initial_delay_ms / 1000


@dataclass(frozen=True)
class Answer:
    model: str
    output: Message | None
    """The answer to give (the draft or the gate's repair), None when it is not good."""
    answered: bool
    gated: bool


async def ask(ctx: StrategyContext, model: str, params: HedgedParams) -> Answer:
    """One call and, with a gate, its verdict."""
    result = await ctx.call(
        model, role=AttemptRole.ANSWER, effort=params.effort, logprobs=ctx.needs_logprobs(params.gate)
    )
    if result.response is None:
        return Answer(model, None, answered=False, gated=False)
    if not result.response.cached:
        LATENCIES.observe(model, result.attempt.latency_ms)
    draft = result.response.message
    if params.gate is None:
        return Answer(model, draft, answered=True, gated=False)
    verdict = await ctx.validate(params.gate, draft)
    if not verdict.kind.passed:
        return Answer(model, None, answered=True, gated=True)
    return Answer(model, verdict.repaired or draft, answered=True, gated=True)


def _can_hedge(ctx: StrategyContext, params: HedgedParams) -> bool:
    if not ctx.allowed(params.backup):
        return False
    return ctx.can_afford(ctx.estimate_call_usd(params.backup, effort=params.effort))


async def run_hedged(ctx: StrategyContext) -> Outcome:
    params: HedgedParams = ctx.params
    if not ctx.allowed(params.primary):
        return _finish(ctx, [await ask(ctx, params.backup, params)])
    tasks: list[asyncio.Task[Answer]] = []
    try:
        answers = await _race(ctx, params, tasks)
    finally:
        await _cancel(tasks)  # the loser records its attempt before the outcome is built
    return _finish(ctx, answers)


async def _race(ctx: StrategyContext, params: HedgedParams, tasks: list[asyncio.Task[Answer]]) -> list[Answer]:
    """Answers in the order they finished, up to the first good one."""
    tasks.append(asyncio.create_task(ask(ctx, params.primary, params)))
    finished: list[Answer] = []
    done, _ = await asyncio.wait(tasks, timeout=hedge_delay_s(params))
    if done:
        finished.append(tasks[0].result())
        if finished[0].output is not None:
            return finished
    if _can_hedge(ctx, params):
        tasks.append(asyncio.create_task(ask(ctx, params.backup, params)))
    pending = {t for t in tasks if not t.done()}
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            answer = task.result()  # OutOfBudget / OutOfTime end the request here
            finished.append(answer)
            if answer.output is not None:
                return finished
    return finished


async def _cancel(tasks: list[asyncio.Task[Answer]]) -> None:
    """Cancel the calls still running (the loser) and wait until each has recorded its attempt."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _finish(ctx: StrategyContext, answers: list[Answer]) -> Outcome:
    for answer in answers:
        if answer.output is not None:
            status = OutcomeStatus.ACCEPTED if answer.gated else OutcomeStatus.ACCEPTED_UNVALIDATED
            return ctx.outcome(status, answer.output)
    answered = any(a.answered for a in answers)
    return ctx.outcome(OutcomeStatus.REJECTED if answered else OutcomeStatus.UPSTREAM_FAILED)


# ---------------------------------------------------------------- explain


def _steps(ectx: ExplainContext) -> list[tuple[PlanStep, float, float]]:
    """(step, best, worst) for the primary and the backup, each with its gate."""
    p: HedgedParams = ectx.params
    out = []
    for role, model in (("primary", p.primary), ("hedge", p.backup)):
        call = ectx.estimate_usd(model, effort=p.effort)
        gate_best, gate_worst = ectx.validator_usd(p.gate)
        step = PlanStep(role=role, model=model, effort=p.effort, estimated_cost_usd=call + gate_worst)
        out.append((step, call + gate_best, call + gate_worst))
    return out


def describe_hedged(ectx: ExplainContext) -> list[PlanStep]:
    return [step for step, _, _ in _steps(ectx)]


def cost_hedged(ectx: ExplainContext) -> tuple[float, float]:
    """Best: the primary answers well before the delay. Worst: both run to the end."""
    steps = _steps(ectx)
    return steps[0][1], sum(worst for _, _, worst in steps)


SPEC = StrategySpec(
    name="hedged",
    run=run_hedged,
    params=HedgedParams,
    models=lambda p: [p.primary, p.backup],
    validators=lambda p: [p.gate] if p.gate else [],
    describe=describe_hedged,
    best_worst_usd=cost_hedged,
)
