"""``draft-validate``: cheap models draft, a validator judges, a strong model answers last.

Round r drafts with ``drafters[r]`` (the last one repeats) at ``efforts[r]`` (ditto),
so effort rises only after a rejected round. Accept → the draft is the answer;
repair → the validator's correction is; reject → the reason is fed back into the
next round. After ``max_rounds`` rejected rounds the ``escalate_to`` model answers
the original request (unvalidated), or, without one, the outcome is rejected.
"""

from __future__ import annotations

import itertools

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policyd.api import (
    AttemptRole,
    Effort,
    EffortParam,
    ExplainContext,
    Message,
    Outcome,
    OutcomeStatus,
    Role,
    StrategyContext,
    StrategySpec,
    ValidatorRef,
    VerdictKind,
)
from policyd_plugins.strategies.gated import Planned, even_share_s, exhausted, gated_call, ladder_explainers

FEEDBACK = "A reviewer rejected your answer: {reason}\nWrite the complete corrected answer."
FEEDBACK_TOKENS = 32
"""Estimated tokens of the feedback note, for Explain."""


class DraftValidateParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    drafters: list[str] = Field(min_length=1)
    """Drafting models, cheapest first: round r uses the r-th (the last repeats)."""
    efforts: list[EffortParam] = Field(default=[Effort.OFF], min_length=1)
    """Drafting effort per round (the last repeats); never decreasing."""
    validator: ValidatorRef
    max_rounds: int = Field(default=2, ge=1, le=10)
    escalate_to: str | None = None
    """The strong model that answers when every round was rejected; None returns rejected."""
    escalate_effort: EffortParam = Effort.OFF
    feedback: bool = True
    """Feed a reject's reason (and the rejected draft) into the next round."""

    @field_validator("efforts")
    @classmethod
    def _rising(cls, value: list[Effort]) -> list[Effort]:
        if any(b.rank < a.rank for a, b in itertools.pairwise(value)):
            raise ValueError("efforts must never decrease (effort rises only after a rejected round)")
        return value


def _nth(items: list[str] | list[Effort], n: int) -> str | Effort:
    return items[min(n, len(items) - 1)]


async def run_draft_validate(ctx: StrategyContext) -> Outcome:
    p: DraftValidateParams = ctx.params
    drafters = [m for m in p.drafters if ctx.allowed(m)]
    messages = ctx.request.messages
    answered = False
    escalates = p.escalate_to is not None and ctx.allowed(p.escalate_to)
    rounds = p.max_rounds if drafters else 0
    for r in range(rounds):
        model, effort = str(_nth(drafters, r)), Effort(_nth(p.efforts, r))
        with ctx.time_box(even_share_s(ctx, rounds - r + escalates)):  # the rounds left and the escalation
            step = await gated_call(
                ctx, model, role=AttemptRole.DRAFT, effort=effort, gate=p.validator, messages=messages, sample_index=r
            )
        if step.draft is None:
            continue
        answered = True
        if step.output is not None:
            return ctx.outcome(OutcomeStatus.ACCEPTED, step.output)
        if p.feedback and step.verdict is not None and step.verdict.kind is VerdictKind.REJECT:
            note = Message(role=Role.USER, content=FEEDBACK.format(reason=step.verdict.reason))
            messages = (*ctx.request.messages, step.draft, note)
    if escalates and p.escalate_to is not None:
        result = await ctx.call(p.escalate_to, role=AttemptRole.ESCALATE, effort=p.escalate_effort, final=True)
        if result.response is not None:
            return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED, result.response.message)
    return exhausted(ctx, answered)


def planned_draft_validate(ectx: ExplainContext) -> list[Planned]:
    p: DraftValidateParams = ectx.params
    feedback = ectx.answer_tokens + FEEDBACK_TOKENS if p.feedback else 0
    drafters = [m for m in p.drafters if ectx.allowed(m)] or p.drafters  # as the run picks them
    planned = [
        Planned(
            "draft",
            str(_nth(drafters, r)),
            Effort(_nth(p.efforts, r)),
            p.validator,
            feedback if r else 0,
            reason=f"round {r + 1} of {p.max_rounds}"
            + (
                ": a cheap first draft"
                if r == 0
                else ", after a reject" + (" (its reason fed back)" if p.feedback else "")
            ),
        )
        for r in range(p.max_rounds)
    ]
    if p.escalate_to is not None:
        planned.append(
            Planned(
                "escalate", p.escalate_to, p.escalate_effort, reason="every round rejected: the strong model answers"
            )
        )
    return planned


describe_draft_validate, cost_draft_validate = ladder_explainers(planned_draft_validate)


def warn_draft_validate(ectx: ExplainContext) -> list[str]:
    """Warn when even an accepted first draft costs more than the validator's model answering alone."""
    p: DraftValidateParams = ectx.params
    if p.validator.model is None:
        return []
    best, _ = cost_draft_validate(ectx)
    alone = ectx.estimate_usd(p.validator.model)
    if best < alone:
        return []
    return [
        f"draft-validate is expected to cost ${best:.6f} even when the first draft is accepted, more than "
        f"{p.validator.model} answering alone (${alone:.6f}): a validator reading a short answer costs about "
        "as much as writing it; consider calling the validator's model directly"
    ]


SPEC = StrategySpec(
    name="draft-validate",
    run=run_draft_validate,
    params=DraftValidateParams,
    models=lambda p: list(dict.fromkeys([*p.drafters, *([p.escalate_to] if p.escalate_to else [])])),
    validators=lambda p: [p.validator],
    describe=describe_draft_validate,
    best_worst_usd=cost_draft_validate,
    warnings=warn_draft_validate,
)
