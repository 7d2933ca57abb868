"""The engine: policy matching, strategy context, budgets, deadlines and outcomes. No gRPC."""

from __future__ import annotations

from policyd.engine.context import CallResult, OutOfBudget, OutOfTime, StrategyContext
from policyd.engine.engine import CallLayer, Engine, OutcomeListener, RequestLayer

__all__ = [
    "CallLayer",
    "CallResult",
    "Engine",
    "OutOfBudget",
    "OutOfTime",
    "OutcomeListener",
    "RequestLayer",
    "StrategyContext",
]
