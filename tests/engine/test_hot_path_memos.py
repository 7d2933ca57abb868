"""What the engine computes once instead of per request: policy matches per config, token estimates
per message tuple, and field-wise copies of the domain's dataclasses (issue #21, a leaner hot path)."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml

from policyd.engine import Engine, tokens
from policyd.engine.explain import explain
from policyd.engine.plan_match import MatchMemo, match_request
from policyd.errors import NotFound
from policyd.types import (
    Constraints,
    Effort,
    Message,
    ModelCall,
    Outcome,
    OutcomeStatus,
    Request,
    Role,
    Stakes,
    Tool,
    evolve,
)

SEED = yaml.safe_load((Path(__file__).parent.parent / "cases" / "matching" / "seed.yaml").read_text())["policy"]


def _request(text: str = "hello", **fields: Any) -> Request:
    return Request(request_id="r", messages=(Message(role=Role.USER, content=text),), **fields)


def _counting(calls: list[str]) -> Any:
    def decide(config: Any, request: Request) -> Any:
        calls.append(request.task)
        return match_request(config, request)

    return decide


@pytest.mark.parametrize(
    "fields",
    [
        {"task": "coding"},
        {"task": "coding", "labels": {"team": "a"}},
        {"task": "coding", "labels": {"team": "b", "trace": "x1"}},
        {"task": "coding", "stakes": Stakes.CRITICAL},
        {"task": "chat", "tenant": "acme"},
        {"task": "chat"},
        {"task": "extraction", "policy": "strict"},
        {"task": "chat", "constraints": Constraints(allowed_licenses=frozenset({"apache-2.0"}))},
    ],
)
def test_the_memo_answers_what_matching_answers(make_config, fields):
    config = make_config(SEED)
    memo = MatchMemo(config)
    calls: list[str] = []
    first = memo.match(_request("one", **fields), _counting(calls))
    again = memo.match(_request("another prompt entirely", **fields), _counting(calls))
    assert again is first and len(calls) == 1, "a request alike in what matching reads is not matched again"
    fresh = match_request(config, _request(**fields))
    assert (first.policy.name, first.rule.name, first.reason, first.skipped) == (
        fresh.policy.name,
        fresh.rule.name,
        fresh.reason,
        fresh.skipped,
    )


def test_what_matching_reads_keeps_requests_apart(make_config):
    memo = MatchMemo(make_config(SEED))
    calls: list[str] = []
    decide = _counting(calls)
    plain = memo.match(_request(task="coding"), decide)
    team = memo.match(_request(task="coding", labels={"team": "a"}), decide)
    critical = memo.match(_request(task="coding", stakes=Stakes.CRITICAL), decide)
    acme = memo.match(_request(task="chat", tenant="acme"), decide)
    other = memo.match(_request(task="chat", tenant="globex"), decide)
    assert [m.rule.name for m in (plain, team, critical, acme, other)] == [
        "coding",
        "team-a-coding",
        "critical",
        "acme-only",
        "catch-all",
    ]
    # A label no rule names does not split the memo: it cannot change the match.
    assert memo.match(_request(task="coding", labels={"trace": "t-1"}), decide) is plain
    assert len(calls) == 5 and len(memo) == 5


def test_an_unknown_policy_is_still_refused(make_config):
    memo = MatchMemo(make_config(SEED))
    for _ in range(2):
        with pytest.raises(NotFound, match="'nope' is not defined"):
            memo.match(_request(policy="nope"), match_request)
    assert len(memo) == 0


def test_a_reload_starts_a_new_memo_on_the_new_config(make_config, registered):
    engine = Engine(make_config(SEED), registered)
    before = engine.turn(_request(task="coding"))
    assert before.plan.strategy == "fallback" and len(before.runtime.matches) == 1
    engine.swap(
        make_config(
            SEED.replace(
                "strategy: fallback, params: {models: [qwen3", "strategy: fallback, params: {models: [glm-4.5, qwen3"
            )
        )
    )
    after = engine.turn(_request(task="coding"))
    assert after.runtime is not before.runtime and after.runtime.matches is not before.runtime.matches
    assert after.plan.models[0] == "glm-4.5" and before.plan.models[0] == "qwen3-coder-480b-a35b"
    assert len(after.runtime.matches) == 1


def test_a_full_memo_starts_afresh(make_config, monkeypatch):
    import policyd.engine.plan_match as plan_match

    monkeypatch.setattr(plan_match, "MEMO_ENTRIES", 3)
    memo = MatchMemo(make_config(SEED))
    for i in range(7):
        memo.match(_request(task=f"task-{i}"), match_request)
        assert len(memo) <= 3


def test_token_estimates_are_remembered_by_identity_and_stay_right():
    messages = (Message(role=Role.USER, content="x" * 40), Message(role=Role.ASSISTANT, content="y" * 8))
    tools = (Tool(name="lookup", description="find", parameters={"type": "object"}),)
    expected = tokens.message_tokens(messages) + tokens.tool_tokens(tools)
    assert tokens.input_tokens(messages, tools) == expected
    assert tokens.input_tokens(messages, tools) == expected
    assert tokens.input_tokens(messages) == tokens.message_tokens(messages)
    longer = (*messages, Message(role=Role.USER, content="z" * 400))
    assert tokens.input_tokens(longer, tools) == expected + tokens.message_tokens(longer[2:])
    assert tokens.input_tokens(list(messages), list(tools)) == expected  # other iterables: not remembered
    for i in range(tokens.RECENT_INPUTS * 2):
        tokens.input_tokens((Message(role=Role.USER, content="w" * i),))
    assert len(tokens._recent) <= tokens.RECENT_INPUTS


def test_evolve_is_dataclasses_replace():
    outcome = Outcome(
        request_id="r",
        status=OutcomeStatus.ACCEPTED,
        output=None,
        attempts=(),
        explanation=None,  # type: ignore[arg-type]
    )
    assert evolve(outcome, latency_ms=2.5) == dataclasses.replace(outcome, latency_ms=2.5)
    assert evolve(outcome, latency_ms=2.5, decision_id="d") == dataclasses.replace(
        outcome, latency_ms=2.5, decision_id="d"
    )
    assert evolve(outcome) == outcome and evolve(outcome) is not outcome
    with pytest.raises(TypeError):
        evolve(outcome, no_such_field=1)
    call = ModelCall(model=None, messages=(), effort=Effort.LOW)  # type: ignore[arg-type]
    assert evolve(call, timeout_s=1.0) == dataclasses.replace(call, timeout_s=1.0)


def test_plugin_limits_are_read_once_per_runtime_and_again_after_a_reload(make_config, registered):
    engine = Engine(make_config(SEED), registered)
    first = engine._containment(engine.runtime)
    assert engine._containment(engine.runtime) is first
    assert first.limit_s("strategies", "single") == 5.0 and first.limit_s("providers", "simulated") is None
    engine.swap(make_config("plugins: {timeouts: {strategy_ms: 250, provider_ms: 900}}\n" + SEED))
    second = engine._containment(engine.runtime)
    assert second is not first
    assert second.limit_s("strategies", "single") == 0.25 and second.limit_s("providers", "simulated") == 0.9
    assert first.limit_s("strategies", "single") == 5.0, "a request still on the old runtime keeps its limits"


def test_a_request_with_unhashable_constraints_is_matched_without_the_memo(make_config):
    memo = MatchMemo(make_config(SEED))
    odd = Constraints(allowed_licenses=["apache-2.0"])  # type: ignore[arg-type]  # a list, as a careless plugin may
    match = memo.match(_request(task="chat", constraints=odd), match_request)
    assert match.rule.name == "catch-all" and len(memo) == 0


def test_an_estimates_only_strategy_explains_once_per_estimate_and_equals_a_fresh_explanation(make_config, registered):
    config = make_config(SEED)
    engine = Engine(config, registered)
    first = engine.turn(_request("one", task="coding"))
    again = engine.turn(_request("two", task="coding"))  # another prompt, the same token estimate
    assert first.plan.strategy == "fallback" and registered.strategies["fallback"].estimates_only
    assert again.explanation is first.explanation
    assert again.explanation == explain(config, registered, again.request, again.match)
    longer = engine.turn(_request("a much longer prompt " * 40, task="coding"))
    capped = engine.turn(_request("one", task="coding", constraints=Constraints(max_cost_usd=1e-9)))
    for turn in (longer, capped):
        assert turn.explanation is not first.explanation
        assert turn.explanation == explain(config, registered, turn.request, turn.match)
    assert longer.explanation.worst_usd > first.explanation.worst_usd
    assert capped.explanation.warnings and not first.explanation.warnings


def test_other_strategies_are_explained_for_every_request(make_config, registered):
    registered.strategies["fallback"] = dataclasses.replace(registered.strategies["fallback"], estimates_only=False)
    engine = Engine(make_config(SEED), registered)
    first = engine.turn(_request("one", task="coding"))
    again = engine.turn(_request("two", task="coding"))
    assert again.explanation == first.explanation and again.explanation is not first.explanation
    assert len(again.runtime.explanations) == 0


def test_the_explanation_memo_is_bounded(make_config, registered, monkeypatch):
    import policyd.engine.explain as explain_module

    monkeypatch.setattr(explain_module, "EXPLANATIONS", 3)
    engine = Engine(make_config(SEED), registered)
    for i in range(8):
        turn = engine.turn(_request("x" * (40 * i + 1), task="coding"))
        assert turn.explanation.worst_usd > 0
        assert len(turn.runtime.explanations) <= 3


def test_the_domain_types_quick_init_takes_the_dataclass_arguments_and_defaults():
    """``quick_init`` replaces the generated ``__init__``: the same signature, defaults and factories."""
    plain = Request(request_id="r", messages=(Message(role=Role.USER, content="hi"),))
    assert plain.labels == {} and plain.labels is not Request(request_id="s", messages=()).labels
    assert plain.params is Request(request_id="s", messages=()).params, "a plain default is shared, as before"
    assert plain == Request("r", (Message(Role.USER, "hi"),)), "positional and keyword arguments alike"
    assert str(inspect.signature(Request)).count("= <factory>") == 1
    with pytest.raises(TypeError, match="request_id"):
        Request(messages=())  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.tenant = "other"  # type: ignore[misc]
    assert dataclasses.replace(plain, tenant="t").tenant == "t"
    assert pickle.loads(pickle.dumps(plain)) == plain and hash(plain.messages[0]) == hash(Message(Role.USER, "hi"))
