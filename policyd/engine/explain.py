"""Explanations: the plan a request would get, its steps and its estimated cost range.

Used for every response (so callers see why) and by ``Explain`` / ``policyd explain``,
which stop here and call no model.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from policyd.config.model import Config, Plan
from policyd.engine import tokens
from policyd.engine.plan_match import Match, model_allowed
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
    cost_cap_usd: float | None = None
    """The most the request may cost, as the run enforces it (request, plan or policy default)."""

    def excluded_by(self, model_id: str) -> str | None:
        """The request constraint that forbids this model (as the run checks it), or None."""
        return model_allowed(self.catalog[model_id], self.request.constraints)

    def allowed(self, model_id: str) -> bool:
        return self.excluded_by(model_id) is None

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


def cost_cap_usd(config: Config, request: Request, match: Match) -> float:
    """The request's cost cap as the run enforces it: the request's, the plan's, else the default."""
    limits = [c for c in (request.constraints.max_cost_usd, match.plan.max_cost_usd) if c is not None]
    return min(limits) if limits else config.defaults.max_cost_usd


EXPLANATIONS = 256
"""Bound of :class:`ExplanationMemo` (entries of one config)."""


class ExplanationMemo:
    """Explanations of one config, reused for strategies whose explanation depends only on estimates.

    A strategy registered with ``estimates_only=True`` reads the request in ``describe``,
    ``best_worst_usd`` and ``warnings`` only through the ExplainContext's estimates, so two
    requests with the same match, input-token estimate, output-token limit and constraints
    get the same explanation: it is built once (the strategy's ``describe`` and cost range,
    the steps, the warnings) and then read. Other strategies' explanations are built for every
    request. At most :data:`EXPLANATIONS` entries, the oldest dropped first; a reload's new
    Runtime starts a new memo.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._known: dict[Hashable, tuple[Match, Explanation]] = {}

    def __len__(self) -> int:
        return len(self._known)

    def explain(self, registered: Registered, request: Request, match: Match) -> Explanation:
        if not registered.strategies[match.plan.strategy].estimates_only:
            return explain(self.config, registered, request, match)
        key = (
            id(match),
            tokens.input_tokens(request.messages, request.tools),
            request.params.max_output_tokens,
            request.constraints,
        )
        try:
            known = self._known.get(key)
        except TypeError:  # constraints made unhashable by a plugin: not remembered
            return explain(self.config, registered, request, match)
        if known is not None and known[0] is match:
            return known[1]
        explanation = explain(self.config, registered, request, match)
        if len(self._known) >= EXPLANATIONS:
            del self._known[next(iter(self._known))]  # the oldest
        self._known[key] = (match, explanation)  # the match held: its id is not reused while remembered
        return explanation


def explain(config: Config, registered: Registered, request: Request, match: Match) -> Explanation:
    spec = registered.strategies[match.plan.strategy]
    cap = cost_cap_usd(config, request, match)
    ectx = ExplainContext(
        request=request, plan=match.plan, catalog=config.catalog, validators=config.validators, cost_cap_usd=cap
    )
    if spec.describe is not None:
        steps = tuple(spec.describe(ectx))
    else:
        steps = tuple(
            PlanStep(
                role="call",
                model=m,
                effort=Effort.OFF,
                estimated_cost_usd=ectx.estimate_usd(m) if ectx.allowed(m) else 0.0,
                reason=f"model {i + 1} of the plan"
                if ectx.allowed(m)
                else f"skipped: excluded by {ectx.excluded_by(m)}",
            )
            for i, m in enumerate(match.plan.models)
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
    if worst > cap:
        warnings.append(
            f"the worst case (${worst:.6f}) is above the request's cost cap (${cap:.6f}): "
            "the run stops with BUDGET_EXHAUSTED before a call it cannot pay for"
        )
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
