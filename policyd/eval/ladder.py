"""``eval-ladder``: a gated ladder the evaluator registers for itself.

Cheapest model first; a rung's answer wins when the gate passes, otherwise (or on an
error) the next rung answers; the last rung is ungated. The gate reads the answer and
its log-probabilities straight from the call result (a validator sees only the draft
message). The daemon does not load it: only ``policyd eval``'s own plugin host does.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policyd.eval.gates import Observation, parse_gate
from policyd.plugin import hookimpl
from policyd.plugin.specs import StrategyContext, StrategySpec, ValidatorRef, ValidatorSpec
from policyd.types import AttemptRole, Message, Outcome, OutcomeStatus, Verdict, VerdictKind

STRATEGY = "eval-ladder"
VALIDATOR = "eval-gate"


class LadderParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[str] = Field(min_length=1)
    gate: str = "none"
    threshold: float | None = None

    @field_validator("gate")
    @classmethod
    def _gate_parses(cls, value: str) -> str:
        parse_gate(value, field_name="gate")
        return value


async def run_ladder(ctx: StrategyContext) -> Outcome:
    params: LadderParams = ctx.params
    gate = parse_gate(params.gate).with_threshold(params.threshold)
    last = len(params.models) - 1
    for i, model_id in enumerate(params.models):
        role = AttemptRole.ANSWER if i == 0 else AttemptRole.ESCALATE
        result = await ctx.call(model_id, role=role, logprobs=gate.scored == "logprob", final=i == last)
        if result.response is None:
            continue
        if i == last:
            return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED, result.response.message)
        agreeing = None
        if gate.agree_with:
            other = await ctx.call(gate.agree_with, role=AttemptRole.VALIDATE)
            agreeing = Observation(other.text) if other.ok else None
        if gate.passes(Observation(result.text, result.response.logprobs), agreeing):
            return ctx.outcome(OutcomeStatus.ACCEPTED, result.response.message)
    return ctx.outcome(OutcomeStatus.UPSTREAM_FAILED)


class GateParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gate: str
    threshold: float | None = None

    @field_validator("gate")
    @classmethod
    def _no_agreement(cls, value: str) -> str:
        if parse_gate(value, field_name="gate").agree_with:
            raise ValueError("agreement needs a second call: use the eval-ladder strategy")
        return value


class GateValidator:
    """Any eval gate but agreement, as a validator (for strategies that take a ``gate`` reference)."""

    def __init__(self, params: GateParams) -> None:
        self.gate = parse_gate(params.gate).with_threshold(params.threshold)
        self.needs_logprobs = self.gate.scored == "logprob"

    async def __call__(self, ctx: StrategyContext, draft: Message) -> Verdict:
        if self.gate.passes(Observation(draft.content, ctx.logprobs_of(draft))):
            return Verdict(VerdictKind.ACCEPT, reason=f"{self.gate.spec} passed")
        return Verdict(VerdictKind.REJECT, reason=f"{self.gate.spec} failed")


class EvalLadderPlugin:
    """Registered by ``policyd eval`` on its own plugin host."""

    @hookimpl
    def policyd_register_strategies(self, register: Callable[[StrategySpec], None]) -> None:
        register(StrategySpec(name=STRATEGY, run=run_ladder, params=LadderParams, models=_models))

    @hookimpl
    def policyd_register_validators(self, register: Callable[[ValidatorSpec], None]) -> None:
        register(ValidatorSpec(name=VALIDATOR, factory=_build_gate, params=GateParams))


def _build_gate(ref: ValidatorRef, params: GateParams) -> GateValidator:
    return GateValidator(params)


def _models(params: LadderParams) -> list[str]:
    gate = parse_gate(params.gate)
    return [*params.models, *([gate.agree_with] if gate.agree_with else [])]
