"""What the ledger keeps of a finished request: one outcome row and one row per attempt.

Derived values the stats need (escalated?, validations, the final model) are computed
once here, when the record is made, so queries stay plain sums.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from policyd.types import Attempt, AttemptRole, Outcome, Request


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    index: int
    role: str
    model: str
    provider: str
    effort: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    saved_usd: float
    latency_ms: float
    cached: bool
    verdict: str
    validator: str
    verdict_reason: str
    error: str


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    request_id: str
    ts: float
    """Unix seconds when the request finished."""
    tenant: str
    policy: str
    rule: str
    task: str
    strategy: str
    policy_version: str
    models: tuple[str, ...]
    """Models called, in order, each once."""
    final_model: str
    """The model of the last successful non-validation call (the answer's), or ''."""
    status: str
    default_success: bool
    cost_usd: float
    saved_usd: float
    tokens_saved: int
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cached: bool
    escalated: bool
    validations: int
    validations_passed: int
    failed_attempts: int
    decision_id: str
    trace_id: str
    attempts: tuple[AttemptRecord, ...]

    @property
    def models_json(self) -> str:
        return json.dumps(list(self.models))


def _attempt(a: Attempt) -> AttemptRecord:
    v = a.verdict
    return AttemptRecord(
        index=a.index,
        role=a.role.value,
        model=a.model,
        provider=a.provider,
        effort=a.effort.value,
        input_tokens=a.input_tokens,
        output_tokens=a.output_tokens,
        cost_usd=a.cost_usd,
        saved_usd=a.saved_usd,
        latency_ms=a.latency_ms,
        cached=a.cached,
        verdict=v.kind.value if v else "",
        validator=v.validator if v else "",
        verdict_reason=v.reason if v else "",
        error=a.error,
    )


def _final_model(attempts: tuple[Attempt, ...]) -> str:
    for a in reversed(attempts):
        if a.role is not AttemptRole.VALIDATE and a.model and not a.error:
            return a.model
    return ""


def outcome_record(request: Request, outcome: Outcome, *, now: float | None = None) -> OutcomeRecord:
    """The ledger's view of a finished request."""
    attempts = outcome.attempts
    verdicts = [a.verdict for a in attempts if a.verdict is not None]
    e = outcome.explanation
    return OutcomeRecord(
        request_id=outcome.request_id or request.request_id,
        ts=time.time() if now is None else now,
        tenant=outcome.tenant or request.tenant,
        policy=e.policy,
        rule=e.rule,
        task=outcome.task or request.task,
        strategy=e.strategy,
        policy_version=e.policy_version,
        models=tuple(dict.fromkeys(a.model for a in attempts if a.model)),
        final_model=_final_model(attempts),
        status=outcome.status.value,
        default_success=outcome.status.is_success,
        cost_usd=outcome.total_cost_usd,
        saved_usd=outcome.saved_usd,
        tokens_saved=outcome.tokens_saved,
        input_tokens=sum(a.input_tokens for a in attempts),
        output_tokens=sum(a.output_tokens for a in attempts),
        latency_ms=outcome.latency_ms,
        cached=any(a.cached for a in attempts),
        escalated=any(a.role is AttemptRole.ESCALATE for a in attempts),
        validations=len(verdicts),
        validations_passed=sum(1 for v in verdicts if v.kind.passed),
        failed_attempts=sum(1 for a in attempts if a.error),
        decision_id=outcome.decision_id,
        trace_id=outcome.trace_id,
        attempts=tuple(_attempt(a) for a in attempts),
    )
