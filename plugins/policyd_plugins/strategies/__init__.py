"""policyd's built-in strategies, registered through the public hooks like any plugin."""

from __future__ import annotations

from collections.abc import Callable

from policyd.api import StrategySpec, ValidatorSpec, hookimpl
from policyd_plugins.strategies import draft_validate, embed, fail_fast, route, thinking_escalation
from policyd_plugins.strategies.basic import (
    FallbackParams,
    SingleParams,
    describe_fallback,
    describe_single,
    run_fallback,
    run_single,
)

POLICYD_API = "1.0"
"""The plugin API this plugin is written for (see docs/plugins.md)."""


@hookimpl
def policyd_register_strategies(register: Callable[[StrategySpec], None]) -> None:
    register(
        StrategySpec(
            name="single",
            run=run_single,
            params=SingleParams,
            models=lambda p: [p.model],
            describe=describe_single,
            estimates_only=True,
            replayable=True,
        )
    )
    register(
        StrategySpec(
            name="fallback",
            run=run_fallback,
            params=FallbackParams,
            models=lambda p: list(p.models),
            describe=describe_fallback,
            estimates_only=True,
            replayable=True,
        )
    )
    for spec in (draft_validate.SPEC, fail_fast.SPEC, thinking_escalation.SPEC, route.SPEC, embed.SPEC):
        register(spec)


@hookimpl
def policyd_register_validators(register: Callable[[ValidatorSpec], None]) -> None:
    register(route.GATE_SPEC)  # the route strategy's learned gate (its router file's post model)
