"""The engine: the Turn, the declared pipeline, policy matching, the strategy context. No gRPC, no YAML."""

from __future__ import annotations

from policyd.engine.context import CallResult, StrategyContext
from policyd.engine.engine import Engine
from policyd.engine.pipeline import Admit, Around, Call, CallLayer, Pipeline, Record
from policyd.engine.stops import OutOfBudget, OutOfTime
from policyd.engine.turn import AttemptRecorded, Runtime, Turn, TurnFinished, TurnStarted

__all__ = [
    "Admit",
    "Around",
    "AttemptRecorded",
    "Call",
    "CallLayer",
    "CallResult",
    "Engine",
    "OutOfBudget",
    "OutOfTime",
    "Pipeline",
    "Record",
    "Runtime",
    "StrategyContext",
    "Turn",
    "TurnFinished",
    "TurnStarted",
]
