"""What the validating strategies share: one model call judged by a gate, and its Explain steps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from policyd.api import (
    AttemptRole,
    Effort,
    ExplainContext,
    Message,
    Outcome,
    OutcomeStatus,
    PlanStep,
    StrategyContext,
    ValidatorRef,
    Verdict,
    VerdictKind,
)


@dataclass(frozen=True)
class Step:
    """A gated call's result: the draft (None when the call failed) and the gate's verdict."""

    draft: Message | None
    verdict: Verdict | None = None

    @property
    def output(self) -> Message | None:
        """The answer to give when the step passed: the draft, or the gate's repair of it."""
        if self.draft is None:
            return None
        if self.verdict is None or self.verdict.kind is VerdictKind.ACCEPT:
            return self.draft
        if self.verdict.kind is VerdictKind.REPAIR:
            return self.verdict.repaired
        return None

    @property
    def status(self) -> OutcomeStatus:
        return OutcomeStatus.ACCEPTED_UNVALIDATED if self.verdict is None else OutcomeStatus.ACCEPTED


async def gated_call(
    ctx: StrategyContext,
    model: str,
    *,
    role: AttemptRole,
    effort: Effort,
    gate: ValidatorRef | None,
    messages: tuple[Message, ...] | None = None,
    sample_index: int = 0,
) -> Step:
    """Call ``model``, then judge its answer with ``gate`` (if any).

    Only an ungated answer streams to the caller as it arrives: a gated one may
    still be rejected. A plan with ``stream_draft: provisional`` streams the gated
    draft too, marked provisional; its gate's verdict confirms or retracts it.
    """
    result = await ctx.call(
        model,
        role=role,
        effort=effort,
        messages=messages,
        logprobs=ctx.needs_logprobs(gate),
        final=gate is None,
        sample_index=sample_index,
        provisional=gate is not None,
    )
    if result.response is None:
        return Step(None)
    draft = result.response.message
    if gate is None:
        return Step(draft)
    return Step(draft, await ctx.validate(gate, draft))


def exhausted(ctx: StrategyContext, answered: bool) -> Outcome:
    """No step passed: rejected if any model answered (each rejected answer is on its attempt, never
    the output), else upstream-failed."""
    return ctx.outcome(OutcomeStatus.REJECTED if answered else OutcomeStatus.UPSTREAM_FAILED)


def even_share_s(ctx: StrategyContext, steps_left: int) -> float | None:
    """The deadline rule of every multi-model strategy: a step gets an equal share of the time
    left among the steps it may still run (itself included), the last one all of it.

    A hung first choice thus leaves time for the next; a fast step leaves its unused share to
    the steps after it (each share is taken from what is left when the step starts).
    """
    remaining = ctx.remaining_s()
    if remaining is None:
        return None
    return remaining if steps_left <= 1 else remaining / steps_left


async def climb(
    ctx: StrategyContext,
    ladder: Sequence[Planned],
    window_s: Callable[[int, int], float | None] | None = None,
) -> Outcome:
    """Try each gated call in turn; the first that passes is the answer.

    A failed call or a failed gate moves on at once. ``window_s(index, left)`` bounds
    a step (its call and its gate) in seconds; by default :func:`even_share_s`. The first
    call drafts and later ones escalate; a lone ungated call just answers.
    """
    answered = False
    for i, item in enumerate(ladder):
        role = AttemptRole.ANSWER if len(ladder) == 1 and item.gate is None else role_for(i)
        left = len(ladder) - i
        with ctx.time_box(window_s(i, left) if window_s is not None else even_share_s(ctx, left)):
            step = await gated_call(ctx, item.model, role=role, effort=item.effort, gate=item.gate)
        answered = answered or step.draft is not None
        if step.output is not None:
            return ctx.outcome(step.status, step.output)
    return exhausted(ctx, answered)


def role_for(position: int) -> AttemptRole:
    """The first model call drafts; every later one escalates."""
    return AttemptRole.DRAFT if position == 0 else AttemptRole.ESCALATE


@dataclass(frozen=True)
class Planned:
    """One call a plan may make, as ``Explain`` shows it."""

    role: str
    model: str
    effort: Effort = Effort.OFF
    gate: ValidatorRef | None = None
    extra_input_tokens: int = 0
    """Input beyond the request (e.g. a fed-back draft)."""
    reason: str = ""
    """Why the call is in the plan, for Explain (``PlanStep.reason``)."""


def estimate_ladder(ectx: ExplainContext, planned: Sequence[Planned]) -> tuple[list[PlanStep], float, float]:
    """Steps of a ladder of gated calls and its cost range.

    Best case: the first call passes its gate (and the gate is cheap). Worst case:
    every call runs and every gate costs its most.
    """
    steps: list[PlanStep] = []
    best = worst = 0.0
    first = True
    for item in planned:
        excluded = ectx.excluded_by(item.model)
        if excluded is not None:  # the run skips it too (ctx.allowed): it costs nothing
            steps.append(
                PlanStep(
                    role=item.role, model=item.model, effort=item.effort, reason=f"skipped: excluded by {excluded}"
                )
            )
            continue
        call = ectx.estimate_usd(item.model, effort=item.effort, extra_input_tokens=item.extra_input_tokens)
        steps.append(
            PlanStep(role=item.role, model=item.model, effort=item.effort, estimated_cost_usd=call, reason=item.reason)
        )
        gate_best, gate_worst = ectx.validator_usd(item.gate)
        if item.gate is not None:
            model = item.gate.model or ""
            steps.append(
                PlanStep(
                    role="validate",
                    model=model,
                    validator=item.gate.name,
                    estimated_cost_usd=gate_worst,
                    best_cost_usd=gate_best,
                    reason=f"gate: {item.gate.name} judges the {item.role}",
                )
            )
        if first:
            best, first = call + gate_best, False
        worst += call + gate_worst
    return steps, best, worst


def ladder_explainers(
    planned: Callable[[ExplainContext], Sequence[Planned]],
) -> tuple[Callable[[ExplainContext], list[PlanStep]], Callable[[ExplainContext], tuple[float, float]]]:
    """A strategy's ``describe`` and ``best_worst_usd`` from the calls it plans."""

    def describe(ectx: ExplainContext) -> list[PlanStep]:
        return estimate_ladder(ectx, planned(ectx))[0]

    def best_worst(ectx: ExplainContext) -> tuple[float, float]:
        _, best, worst = estimate_ladder(ectx, planned(ectx))
        return best, worst

    return describe, best_worst
