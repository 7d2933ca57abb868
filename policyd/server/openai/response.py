"""Domain Outcome → a standard ``chat.completion`` (and its stream chunks), plus policyd's detail.

``usage`` is the sum over every attempt (drafts, validations, escalations), so a
caller's token accounting matches what was spent; tokens answered from the cache are
in ``prompt_tokens_details.cached_tokens``. The decision (request id, status,
attempts, cost, explanation) rides in ``x-policyd-*`` headers and in a top-level
``policyd`` field that OpenAI SDKs keep as an extra attribute and otherwise ignore.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from policyd.types import Attempt, AttemptRole, Message, ModelSpec, Outcome

FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}


def completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id}"


def answering_attempt(outcome: Outcome) -> Attempt | None:
    """The last successful attempt that produced an answer (not a validator's verdict)."""
    for attempt in reversed(outcome.attempts):
        if not attempt.error and attempt.role is not AttemptRole.VALIDATE:
            return attempt
    return None


def finish_reason(outcome: Outcome, output: Message) -> str:
    if output.tool_calls:
        return "tool_calls"
    attempt = answering_attempt(outcome)
    reason = attempt.finish_reason if attempt is not None else ""
    return reason if reason in FINISH_REASONS else "stop"


def usage(outcome: Outcome) -> dict[str, Any]:
    prompt = sum(a.input_tokens for a in outcome.attempts)
    completion = sum(a.output_tokens for a in outcome.attempts)
    cached = sum(a.input_tokens for a in outcome.attempts if a.cached)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def tool_calls(output: Message) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json}}
        for c in output.tool_calls
    ]


def answer_model(outcome: Outcome, asked: str) -> str:
    attempt = answering_attempt(outcome)
    return attempt.model if attempt is not None and attempt.model else asked


def _attempt(a: Attempt) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": a.index,
        "role": a.role.value,
        "model": a.model,
        "provider": a.provider,
        "effort": a.effort.value,
        "input_tokens": a.input_tokens,
        "output_tokens": a.output_tokens,
        "cost_usd": a.cost_usd,
        "latency_ms": round(a.latency_ms, 3),
        "cached": a.cached,
    }
    if a.verdict is not None:
        out["verdict"] = {"kind": a.verdict.kind.value, "reason": a.verdict.reason, "validator": a.verdict.validator}
    if a.error:
        out["error"] = f"{a.error}: {a.error_detail}" if a.error_detail else a.error
    return out


def detail(outcome: Outcome) -> dict[str, Any]:
    """policyd's view of the request: the ``policyd`` field of a completion."""
    e = outcome.explanation
    return {
        "request_id": outcome.request_id,
        "status": outcome.status.value,
        "cost_usd": outcome.total_cost_usd,
        "saved_usd": outcome.saved_usd,
        "attempts": [_attempt(a) for a in outcome.attempts],
        "explanation": {
            "policy": e.policy,
            "rule": e.rule,
            "strategy": e.strategy,
            "reason": e.reason,
            "models": list(e.models),
            "policy_version": e.policy_version,
            "warnings": list(e.warnings),
        },
        "trace_id": outcome.trace_id,
        "decision_id": outcome.decision_id,
    }


def headers(outcome: Outcome) -> dict[str, str]:
    e = outcome.explanation
    out = {
        "x-request-id": outcome.request_id,
        "x-policyd-request-id": outcome.request_id,
        "x-policyd-status": outcome.status.value,
        "x-policyd-cost-usd": f"{outcome.total_cost_usd:.8f}",
        "x-policyd-attempts": str(len(outcome.attempts)),
        "x-policyd-policy": e.policy,
        "x-policyd-rule": e.rule,
        "x-policyd-strategy": e.strategy,
    }
    if outcome.trace_id:
        out["x-policyd-trace-id"] = outcome.trace_id
    if outcome.decision_id:
        out["x-policyd-decision-id"] = outcome.decision_id
    return out


def completion(outcome: Outcome, output: Message, asked: str, created: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": output.content or None, "refusal": None}
    if output.tool_calls:
        message["tool_calls"] = tool_calls(output)
    return {
        "id": completion_id(outcome.request_id),
        "object": "chat.completion",
        "created": created,
        "model": answer_model(outcome, asked),
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason(outcome, output), "logprobs": None}
        ],
        "usage": usage(outcome),
        "system_fingerprint": outcome.explanation.policy_version or None,
        "policyd": detail(outcome),
    }


def now() -> int:
    return int(time.time())


def models_list(catalog: Mapping[str, ModelSpec], policies: Mapping[str, Any]) -> dict[str, Any]:
    """The policies (``policyd/<name>``) first, then every catalog model, in OpenAI's list shape."""
    data = [{"id": f"policyd/{name}", "object": "model", "created": 0, "owned_by": "policyd"} for name in policies]
    data += [{"id": m.id, "object": "model", "created": 0, "owned_by": m.provider} for m in catalog.values()]
    return {"object": "list", "data": data}
