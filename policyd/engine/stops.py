"""Why a request stops early: raised by the strategy context, turned into an Outcome by the engine.

Their own module so that :mod:`policyd.engine.containment` (which stops a request at
its deadline) and :mod:`policyd.engine.context` (which stops it at its budget) share
them without importing each other.
"""

from __future__ import annotations

from policyd.errors import PolicydError
from policyd.types import OutcomeStatus


class StrategyStop(PolicydError):
    """Raised by the context when the request cannot go on; the engine makes it an Outcome."""

    status: OutcomeStatus


class OutOfBudget(StrategyStop):
    status = OutcomeStatus.BUDGET_EXHAUSTED


class OutOfTime(StrategyStop):
    status = OutcomeStatus.DEADLINE_EXCEEDED


class StreamBroken(PolicydError):
    """A call that had already streamed text to the caller failed: the stream must end in error."""

    reason = "STREAM_BROKEN"
