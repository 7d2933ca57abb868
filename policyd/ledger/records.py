"""What the ledger keeps of a finished request: one outcome row and one row per attempt.

Derived values the stats need (escalated?, validations, the final model) are computed
once here, when the row is made, so queries stay plain sums.

The request path only queues a :class:`Finished` (the request, its outcome and the time
it finished: three references, no copying); the writer thread turns it into rows with
:func:`values`. Request and Outcome are frozen, so reading them from that thread is safe,
and the event loop spends no time on the rows' dozens of fields or the models' JSON
(except for outcomes queued behind a stalled disk, packed at once: :mod:`policyd.ledger.spool`).
The rows are made without their ``seq``, which the writer gives when it inserts them.
"""

from __future__ import annotations

import json
import time
from typing import NamedTuple

from policyd.types import Attempt, AttemptRole, Effort, Outcome, OutcomeStatus, Request, VerdictKind

OUTCOME_COLUMNS = (
    "seq", "request_id", "ts", "tenant", "policy", "rule", "task", "strategy", "policy_version", "models",
    "final_model", "status", "default_success", "cost_usd", "saved_usd", "tokens_saved", "input_tokens",
    "output_tokens", "latency_ms", "cached", "escalated", "validations", "validations_passed", "attempts",
    "failed_attempts", "decision_id", "trace_id",
)  # fmt: skip
"""The columns :func:`outcome_row` fills, in its order (the reported_* ones stay NULL until a report)."""
ATTEMPT_COLUMNS = (
    "outcome_seq", "idx", "role", "model", "provider", "effort", "input_tokens", "output_tokens", "cost_usd",
    "saved_usd", "latency_ms", "cached", "verdict", "validator", "verdict_reason", "error",
)  # fmt: skip

Row = tuple[object, ...]
Values = tuple[Row, list[Row]]
"""An outcome's row and its attempts' rows, each without the leading ``seq`` / ``outcome_seq``."""


class Finished(NamedTuple):
    """A finished request, queued for the ledger."""

    request: Request
    """As received (the ledger records what the caller asked)."""
    outcome: Outcome
    ts: float
    """Unix seconds when the request finished."""


def finished(request: Request, outcome: Outcome, *, now: float | None = None) -> Finished:
    return Finished(request, outcome, time.time() if now is None else now)


def _final_model(attempts: tuple[Attempt, ...]) -> str:
    """The model of the last successful non-validation call (the answer's), or ''."""
    for a in reversed(attempts):
        if a.role is not AttemptRole.VALIDATE and a.model and not a.error:
            return a.model
    return ""


def _models_json(models: dict[str, None]) -> str:
    """``json.dumps(list(models))``, its text written directly for the usual one plain model id (~0.2 µs
    against ~2.5 µs a row); anything JSON would escape goes through ``json.dumps``."""
    if len(models) == 1:
        (model,) = models
        if model.isascii() and model.isprintable() and '"' not in model and "\\" not in model:
            return f'["{model}"]'
    return json.dumps(list(models))


def values(f: Finished) -> Values:
    """The rows of ``f`` (:data:`OUTCOME_COLUMNS` and :data:`ATTEMPT_COLUMNS` without their first)."""
    return outcome_values(f), attempt_values(f.outcome)


_STATUS = {status: (status.value, int(status.is_success)) for status in OutcomeStatus}
"""Each status's column values, looked up once (an enum's ``value`` is a property)."""
_VALUE: dict[str, str] = {member: member.value for kind in (AttemptRole, Effort, VerdictKind) for member in kind}
"""The column value of each role, effort and verdict kind (members of equal value share an entry)."""


def _one_attempt(a: Attempt) -> tuple[int, int, int, int, int, int, int, str, str]:
    """The totals :func:`_totals` makes, for the usual outcome of one attempt (a cache hit, a
    single call): no loop, no dict of models."""
    v = a.verdict
    model = a.model
    failed = 1 if a.error else 0
    final = model if model and not failed and a.role is not AttemptRole.VALIDATE else ""
    return (
        a.input_tokens,
        a.output_tokens,
        int(a.cached),
        int(a.role is AttemptRole.ESCALATE),
        0 if v is None else 1,
        int(v is not None and v.kind.passed),
        failed,
        _models_json({model: None}) if model else "[]",
        final,
    )


def _totals(attempts: tuple[Attempt, ...]) -> tuple[int, int, int, int, int, int, int, str, str]:
    """Tokens, cached, escalated, validations, passed, failed, the models' JSON and the final model."""
    return _one_attempt(attempts[0]) if len(attempts) == 1 else _summed(attempts)


def _summed(attempts: tuple[Attempt, ...]) -> tuple[int, int, int, int, int, int, int, str, str]:
    """:func:`_totals` of any number of attempts."""
    input_tokens = output_tokens = validations = passed = failed = 0
    cached = escalated = False
    models: dict[str, None] = {}  # called, in order, each once
    for a in attempts:
        input_tokens += a.input_tokens
        output_tokens += a.output_tokens
        cached = cached or a.cached
        escalated = escalated or a.role is AttemptRole.ESCALATE
        if a.model:
            models[a.model] = None
        if a.verdict is not None:
            validations += 1
            passed += a.verdict.kind.passed
        if a.error:
            failed += 1
    return (
        input_tokens,
        output_tokens,
        int(cached),
        int(escalated),
        validations,
        passed,
        failed,
        _models_json(models),
        _final_model(attempts),
    )


def outcome_values(f: Finished) -> Row:
    """The ``outcomes`` row of ``f`` (:data:`OUTCOME_COLUMNS` after ``seq``)."""
    request, outcome, ts = f
    attempts = outcome.attempts
    e = outcome.explanation
    input_tokens, output_tokens, cached, escalated, validations, passed, failed, models, final = _totals(attempts)
    status, success = _STATUS[outcome.status]
    return (
        outcome.request_id or request.request_id,
        ts,
        outcome.tenant or request.tenant,
        e.policy,
        e.rule,
        outcome.task or request.task,
        e.strategy,
        e.policy_version,
        models,
        final,
        status,
        success,
        outcome.total_cost_usd,
        outcome.saved_usd,
        outcome.tokens_saved,
        input_tokens,
        output_tokens,
        outcome.latency_ms,
        cached,
        escalated,
        validations,
        passed,
        len(attempts),
        failed,
        outcome.decision_id,
        outcome.trace_id,
    )


def attempt_values(outcome: Outcome) -> list[Row]:
    """The ``attempts`` rows of ``outcome`` (:data:`ATTEMPT_COLUMNS` after ``outcome_seq``)."""
    rows: list[Row] = []
    for a in outcome.attempts:
        v = a.verdict
        rows.append(
            (
                a.index,
                _VALUE[a.role],
                a.model,
                a.provider,
                _VALUE[a.effort],
                a.input_tokens,
                a.output_tokens,
                a.cost_usd,
                a.saved_usd,
                a.latency_ms,
                int(a.cached),
                _VALUE[v.kind] if v else "",
                v.validator if v else "",
                v.reason if v else "",
                a.error,
            )
        )
    return rows
