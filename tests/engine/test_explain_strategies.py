"""Explain for the validating strategies: steps, cost ranges and the validation-cost warning."""

from __future__ import annotations

import math

import pytest

from policyd.cli.main import main
from policyd.config.loader import bundled_default_text
from policyd.engine import Engine
from policyd.types import GenerationParams, Message, Request, Role, Stakes


def request(task: str, *, stakes: Stakes = Stakes.NORMAL, max_output_tokens: int | None = None) -> Request:
    return Request(
        request_id="x",
        messages=(Message(role=Role.USER, content="Write a short poem about the sea"),),
        task=task,
        stakes=stakes,
        params=GenerationParams(max_output_tokens=max_output_tokens),
    )


@pytest.fixture
def engine(make_config, registered) -> Engine:
    """The bundled default policy (no model is called by Explain)."""
    return Engine(make_config(bundled_default_text()), registered)


def test_draft_validate_steps_and_range_from_catalog_prices(engine) -> None:
    e = engine.explain(request("creative", max_output_tokens=200))
    assert (e.rule, e.strategy) == ("creative", "draft-validate")
    assert [s.role for s in e.steps] == ["draft", "validate", "draft", "validate", "escalate"]
    assert [s.model for s in e.steps] == ["glm-4.5", "claude-sonnet-4", "glm-4.5", "claude-sonnet-4", "claude-sonnet-4"]
    assert e.steps[1].validator == "llm-judge"
    assert math.isclose(e.worst_usd, sum(s.estimated_cost_usd for s in e.steps))
    glm = engine.config.catalog["glm-4.5"]
    assert e.steps[0].estimated_cost_usd == glm.cost_usd(4 + 8, 200)
    assert e.steps[0].estimated_cost_usd < e.best_usd < e.worst_usd


def test_short_answers_warn_that_validation_costs_more_than_the_strong_model(engine) -> None:
    short = engine.explain(request("creative", max_output_tokens=40))
    assert len(short.warnings) == 1
    assert "more than claude-sonnet-4 answering alone" in short.warnings[0]
    long = engine.explain(request("creative", max_output_tokens=2000))
    assert long.warnings == ()


def test_fail_fast_gates_are_free_and_the_best_case_is_the_first_rung(engine) -> None:
    e = engine.explain(request("coding"))
    assert [(s.role, s.model, s.validator) for s in e.steps] == [
        ("rung", "qwen3-coder-480b-a35b", ""),
        ("validate", "", "logprob-confidence"),
        ("escalate", "glm-4.5", ""),
        ("validate", "", "logprob-confidence"),
        ("escalate", "claude-sonnet-4", ""),
    ]
    assert e.best_usd == e.steps[0].estimated_cost_usd
    assert e.steps[1].estimated_cost_usd == 0.0


def test_thinking_escalation_starts_at_the_stakes_level_and_prices_reasoning(engine) -> None:
    high = engine.explain(request("x", stakes=Stakes.HIGH))
    assert [s.effort.value for s in high.steps if s.role != "validate"] == ["low", "medium"]
    assert high.steps[0].estimated_cost_usd < high.steps[2].estimated_cost_usd, "more effort, more reasoning tokens"


def test_cli_explain_prints_the_range_and_the_warning(capsys, monkeypatch) -> None:
    monkeypatch.delenv("POLICYD_CONFIG", raising=False)
    code = main(["explain", "--prompt", "Write a haiku", "--task", "creative", "--max-output-tokens", "30"])
    out = capsys.readouterr().out
    assert code == 0
    assert "strategy draft-validate" in out
    assert "(best) to $" in out
    assert "warning: draft-validate is expected to cost" in out
