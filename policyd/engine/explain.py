"""Explanations: the plan a request would get, its steps and its estimated cost range.

Used for every response (so callers see why) and by ``Explain`` / ``policyd explain``,
which stop here and call no model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policyd.config.model import Config, Plan
from policyd.engine import tokens
from policyd.engine.plan_match import Match
from policyd.plugin.specs import Registered, Validator, ValidatorRef, validator_key
from policyd.types import Effort, Explanation, ModelSpec, PlanStep, Request


@dataclass(frozen=True)
class ExplainContext:
    """What a strategy's ``describe`` sees: the request, the plan and the catalog."""

    request: Request
    plan: Plan
    catalog: Mapping[str, ModelSpec]
    validators: Mapping[str, Validator] = field(default_factory=dict)
    """The config's built validators, so a plan can price its gates."""

    @property
    def params(self) -> Any:
        return self.plan.params

    @property
    def answer_tokens(self) -> int:
        """Output tokens an answer to this request is allowed (and, for estimates, assumed) to take."""
        return self.request.params.max_output_tokens or tokens.DEFAULT_MAX_OUTPUT_TOKENS

    def estimate_usd(
        self,
        model_id: str,
        *,
        output_tokens: int | None = None,
        extra_input_tokens: int = 0,
        effort: Effort = Effort.OFF,
        reasoning: bool = True,
    ) -> float:
        """Estimated cost of one call of ``model_id`` on this request.

        ``reasoning=False`` leaves out the effort's reasoning allowance (a best case).
        """
        model = self.catalog[model_id]
        out = output_tokens or self.answer_tokens
        if reasoning:
            out += tokens.reasoning_allowance(effort, model.thinking)
        inp = tokens.input_tokens(self.request.messages, self.request.tools) + extra_input_tokens
        return model.cost_usd(inp, out)

    def validator_usd(self, ref: ValidatorRef | None) -> tuple[float, float]:
        """Best and worst estimated cost of one run of a validator (0 for free ones).

        A validator prices itself with an optional ``estimate_usd(ectx) -> (best, worst)``
        method; one without it calls no model and costs nothing.
        """
        if ref is None:
            return 0.0, 0.0
        validator = self.validators.get(validator_key(ref))
        estimate = getattr(validator, "estimate_usd", None)
        if estimate is None:
            return 0.0, 0.0
        best, worst = estimate(self)
        return float(best), float(worst)


def explain(config: Config, registered: Registered, request: Request, match: Match) -> Explanation:
    spec = registered.strategies[match.plan.strategy]
    ectx = ExplainContext(request=request, plan=match.plan, catalog=config.catalog, validators=config.validators)
    if spec.describe is not None:
        steps = tuple(spec.describe(ectx))
    else:
        steps = tuple(
            PlanStep(role="call", model=m, effort=Effort.OFF, estimated_cost_usd=ectx.estimate_usd(m))
            for m in match.plan.models
        )
    if spec.best_worst_usd is not None:
        best, worst = spec.best_worst_usd(ectx)
    else:
        costs = [s.estimated_cost_usd for s in steps]
        best, worst = (costs[0] if costs else 0.0), sum(costs)
    reason = match.reason
    if match.skipped:
        reason += " (" + "; ".join(match.skipped) + ")"
    warnings: list[str] = []
    if spec.warnings is not None:
        warnings.extend(spec.warnings(ectx))
    return Explanation(
        policy=match.policy.name,
        rule=match.rule.name,
        strategy=match.plan.strategy,
        reason=reason,
        models=match.plan.models,
        steps=steps,
        best_usd=best,
        worst_usd=worst,
        warnings=tuple(warnings),
        policy_version=config.version,
    )
