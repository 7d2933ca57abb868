"""The strategy context enforces budget, deadline and constraints on every call."""

from __future__ import annotations

import time

import pytest

from policyd.engine import Engine
from policyd.engine.context import OutOfBudget, StrategyContext
from policyd.types import AttemptRole, Constraints, Effort, Message, OutcomeStatus, Request, Role

POLICY = """
providers:
  simulated: {kind: simulated, latency_scale: 0}
models:
  glm-4.5:
    options: {simulated: {error_rate: 1.0}}
policies:
  default:
    rules:
      - name: ladder
        plan: {strategy: fallback, params: {models: [glm-4.5, claude-opus-4.1]}}
"""


def _request(**kw: object) -> Request:
    base: dict[str, object] = {
        "request_id": "r",
        "messages": (Message(role=Role.USER, content="explain monads"),),
        "deadline": time.monotonic() + 5,
    }
    base.update(kw)
    return Request(**base)  # type: ignore[arg-type]


def _ctx(config, registered, request: Request, max_cost: float) -> StrategyContext:
    engine = Engine(config, registered)
    turn = engine.turn(request)
    turn.hold(max_cost)
    return StrategyContext(turn, engine.call_handler())


async def test_a_failed_call_is_recorded_and_the_next_model_answers(make_config, registered):
    config = make_config(POLICY)
    outcome = await Engine(config, registered).complete(_request())
    assert outcome.status is OutcomeStatus.ACCEPTED_UNVALIDATED
    assert [(a.model, a.role) for a in outcome.attempts] == [
        ("glm-4.5", AttemptRole.ANSWER),
        ("claude-opus-4.1", AttemptRole.ESCALATE),
    ]
    assert "simulated upstream error" in outcome.attempts[0].error
    assert outcome.attempts[0].cost_usd == 0
    assert outcome.total_cost_usd == outcome.attempts[1].cost_usd > 0


async def test_a_call_that_cannot_be_paid_for_is_never_started(make_config, registered):
    config = make_config(POLICY)
    ctx = _ctx(config, registered, _request(), max_cost=0.001)
    worst = ctx.estimate_call_usd("claude-opus-4.1")
    assert worst > 0.001
    with pytest.raises(OutOfBudget, match=r"next call to claude-opus-4\.1 may cost"):
        await ctx.call("claude-opus-4.1")
    assert ctx.attempts == []


async def test_budget_exhausted_outcome_keeps_the_trail(make_config, registered):
    config = make_config(POLICY)
    # enough for glm-4.5's worst case, not for Opus's
    outcome = await Engine(config, registered).complete(_request(constraints=Constraints(max_cost_usd=0.01)))
    assert outcome.status is OutcomeStatus.BUDGET_EXHAUSTED
    assert [a.model for a in outcome.attempts] == ["glm-4.5"]
    assert outcome.output is None


async def test_constraints_exclude_models_without_calling_them(make_config, registered):
    config = make_config(POLICY)
    ctx = _ctx(config, registered, _request(constraints=Constraints(allowed_licenses=frozenset({"mit"}))), 1.0)
    result = await ctx.call("claude-opus-4.1")
    assert not result.ok
    assert result.attempt.error == "excluded by constraints.allowed_licenses"
    assert result.attempt.latency_ms == 0


async def test_deadline_too_short_stops_with_deadline_exceeded(make_config, registered):
    config = make_config(POLICY.replace("latency_scale: 0", "latency_scale: 1"))
    outcome = await Engine(config, registered).complete(_request(deadline=time.monotonic() + 0.2))
    assert outcome.status is OutcomeStatus.DEADLINE_EXCEEDED
    assert outcome.attempts[-1].error.startswith("timed out after")


def test_thinking_calls_reserve_their_effort_reasoning_allowance(make_config, registered):
    config = make_config(POLICY)
    ctx = _ctx(config, registered, _request(), max_cost=1.0)
    off = ctx.estimate_call_usd("claude-opus-4.1", effort=Effort.OFF)
    high = ctx.estimate_call_usd("claude-opus-4.1", effort=Effort.HIGH)
    opus = config.catalog["claude-opus-4.1"]
    assert high - off == pytest.approx(opus.cost_usd(0, 8192))
    assert ctx.estimate_call_usd("kimi-k2", effort=Effort.HIGH) == ctx.estimate_call_usd("kimi-k2"), "cannot think"


async def test_a_time_box_fails_the_call_but_not_the_request(make_config, registered):
    config = make_config(POLICY.replace("latency_scale: 0", "latency_scale: 1"))
    ctx = _ctx(config, registered, _request(), max_cost=1.0)
    with ctx.time_box(0.05):
        result = await ctx.call("claude-opus-4.1")
        assert not result.ok and "timed out" in result.attempt.error
        with ctx.time_box(10):
            assert ctx.box_remaining_s() is not None and ctx.box_remaining_s() < 0.05, "the tighter box wins"
    assert ctx.box_remaining_s() is None
    with ctx.time_box(0):
        skipped = await ctx.call("claude-opus-4.1")
    assert skipped.attempt.error == "no time left in this step's share"
