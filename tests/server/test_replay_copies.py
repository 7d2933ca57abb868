"""The replay memo's copies of a remembered request, attempt and outcome equal ``evolve``'s."""

from __future__ import annotations

from dataclasses import fields

import pytest

from policyd.server import replay
from policyd.types import (
    Attempt,
    AttemptRole,
    CacheMode,
    Constraints,
    Effort,
    Explanation,
    GenerationParams,
    Message,
    Outcome,
    OutcomeStatus,
    Request,
    Role,
    Stakes,
    Tool,
    Verdict,
    VerdictKind,
    evolve,
)


def every_field_set() -> tuple[Request, Attempt, Outcome]:
    """Objects whose every field differs from its default, so a field left out of a copy shows."""
    message = Message(role=Role.USER, content="hello")
    request = Request(
        request_id="r1",
        messages=(message,),
        tools=(Tool(name="lookup"),),
        params=GenerationParams(max_output_tokens=7),
        task="t",
        stakes=Stakes.HIGH,
        labels={"team": "a"},
        constraints=Constraints(local_only=True),
        cache_mode=CacheMode.REFRESH,
        policy="p",
        tenant="acme",
        deadline=12.5,
    )
    attempt = Attempt(
        index=2,
        role=AttemptRole.DRAFT,
        model="m",
        provider="pr",
        effort=Effort.HIGH,
        input_tokens=3,
        output_tokens=4,
        cost_usd=0.5,
        latency_ms=9.0,
        cached=True,
        verdict=Verdict(kind=VerdictKind.ACCEPT),
        error="e",
        error_detail="d",
        saved_usd=0.25,
        usage_estimated=True,
        finish_reason="stop",
        output=message,
    )
    outcome = Outcome(
        request_id="r1",
        status=OutcomeStatus.ACCEPTED,
        output=message,
        attempts=(attempt,),
        explanation=Explanation(policy="p", rule="r", strategy="single", reason="why"),
        total_cost_usd=0.5,
        saved_usd=0.25,
        tokens_saved=5,
        trace_id="t1",
        decision_id="d1",
        tenant="acme",
        task="t",
        latency_ms=11.0,
    )
    return request, attempt, outcome


def test_each_copy_keeps_every_other_field_as_evolve_does() -> None:
    request, attempt, outcome = every_field_set()
    for obj in (request, attempt, outcome):
        assert all(getattr(obj, f.name) != f.default for f in fields(obj)), obj

    assert replay._fresh_request(request, "r2", 30.0) == evolve(request, request_id="r2", deadline=30.0)
    assert replay._timed_attempt(attempt, 1.5) == evolve(attempt, latency_ms=1.5)
    attempts = (evolve(attempt, latency_ms=2.0),)
    copied = replay._replayed_outcome(outcome, "r3", attempts, "d3")
    assert copied == evolve(outcome, request_id="r3", attempts=attempts, decision_id="d3")
    assert copied.attempts is attempts


def test_a_copier_refuses_a_field_the_class_does_not_have() -> None:
    with pytest.raises(TypeError, match="Request"):
        replay._copier(Request, "request_id", "no_such_field")
