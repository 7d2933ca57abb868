"""policyd's built-in strategies, registered through the public hooks like any plugin."""

from __future__ import annotations

from collections.abc import Callable

from policyd.plugin import hookimpl
from policyd.plugin.specs import StrategySpec
from policyd_strategies import draft_validate as dv
from policyd_strategies import fail_fast as ff
from policyd_strategies import thinking_escalation as te
from policyd_strategies.basic import (
    FallbackParams,
    SingleParams,
    describe_fallback,
    describe_single,
    run_fallback,
    run_single,
)


@hookimpl
def policyd_register_strategies(register: Callable[[StrategySpec], None]) -> None:
    register(
        StrategySpec(
            name="single",
            run=run_single,
            params=SingleParams,
            models=lambda p: [p.model],
            describe=describe_single,
        )
    )
    register(
        StrategySpec(
            name="fallback",
            run=run_fallback,
            params=FallbackParams,
            models=lambda p: list(p.models),
            describe=describe_fallback,
        )
    )
    register(
        StrategySpec(
            name="draft-validate",
            run=dv.run_draft_validate,
            params=dv.DraftValidateParams,
            models=lambda p: list(dict.fromkeys([*p.drafters, *([p.escalate_to] if p.escalate_to else [])])),
            validators=lambda p: [p.validator],
            describe=dv.describe_draft_validate,
            best_worst_usd=dv.cost_draft_validate,
            warnings=dv.warn_draft_validate,
        )
    )
    register(
        StrategySpec(
            name="fail-fast",
            run=ff.run_fail_fast,
            params=ff.FailFastParams,
            models=lambda p: list(dict.fromkeys(r.model for r in p.rungs)),
            validators=lambda p: p.validators(),
            describe=ff.describe_fail_fast,
            best_worst_usd=ff.cost_fail_fast,
        )
    )
    register(
        StrategySpec(
            name="thinking-escalation",
            run=te.run_thinking_escalation,
            params=te.ThinkingEscalationParams,
            models=lambda p: p.models(),
            validators=lambda p: [p.gate] if p.gate else [],
            describe=te.describe_thinking_escalation,
            best_worst_usd=te.cost_thinking_escalation,
            warnings=te.warn_thinking_escalation,
        )
    )
