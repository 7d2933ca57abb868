"""Plans and validator references are checked at load time; errors name the key path."""

from __future__ import annotations

import pytest

from policyd.errors import ConfigError
from policyd.types import Effort

BASE = """
policies:
  default:
    rules:
      - name: r
        plan:
          strategy: {strategy}
          params: {params}
"""


def plan(strategy: str, params: str) -> str:
    return BASE.format(strategy=strategy, params=params)


@pytest.mark.parametrize(
    ("strategy", "params", "expected"),
    [
        (
            "fail-fast",
            "{rungs: [{model: glm-4.5, ungated: true}, {model: o3, gate: {name: regex, params: {pattern: x}}}]}",
            "rungs[0].ungated: only the last rung may be ungated",
        ),
        ("fail-fast", "{rungs: [{model: glm-4.5}, {model: o3}]}", "rungs[0].gate: every rung needs a gate"),
        (
            "draft-validate",
            "{drafters: [glm-4.5], efforts: [high, low], validator: {name: regex, params: {pattern: x}}}",
            "efforts must never decrease",
        ),
        ("thinking-escalation", "{model: glm-4.5, levels: [low, low]}", "levels must rise strictly"),
        (
            "thinking-escalation",
            "{model: glm-4.5, levels: [off, low], models_by_effort: {high: o3}}",
            "models_by_effort: high not in levels",
        ),
        (
            "fail-fast",
            "{gate: {name: regex, params: {pattern: '(unclosed'}}, rungs: [{model: glm-4.5}]}",
            "(validator regex).pattern: not a valid regular expression",
        ),
        (
            "fail-fast",
            "{gate: {name: json-schema, params: {schema: {type: 12}}}, rungs: [{model: glm-4.5}]}",
            "not a valid JSON Schema",
        ),
        (
            "fail-fast",
            "{gate: {name: llm-judge}, rungs: [{model: glm-4.5}]}",
            "validator 'llm-judge' needs a model",
        ),
        (
            "fail-fast",
            "{gate: {name: llm-judge, model: gpt-7}, rungs: [{model: glm-4.5}]}",
            "unknown model 'gpt-7'",
        ),
        (
            "fail-fast",
            "{gate: {name: llm-judje, model: o3}, rungs: [{model: glm-4.5}]}",
            "unknown validator 'llm-judje'",
        ),
        (
            "draft-validate",
            "{drafters: [glm-4.5], validator: {name: llm-judge, model: o3, params: {effort: extreme}}}",
            "(validator llm-judge).effort",
        ),
    ],
)
def test_bad_plan_is_rejected_at_load_naming_the_key(make_config, strategy, params, expected) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(plan(strategy, params))
    message = str(info.value)
    assert message.startswith("test.yaml: policies.default.rules[0].plan.params"), message
    assert expected in message


def test_bare_yaml_off_reads_as_effort_off(make_config) -> None:
    config = make_config(plan("thinking-escalation", "{model: glm-4.5, levels: [off, high], start: {critical: off}}"))
    params = config.policies["default"].rules[0].plan.params
    assert params.levels == [Effort.OFF, Effort.HIGH]
    assert params.start[next(iter(params.start))] is Effort.OFF


def test_validator_models_and_family_members_are_plan_models(make_config) -> None:
    config = make_config(
        plan(
            "thinking-escalation",
            "{model: glm-4.5, models_by_effort: {high: claude-sonnet-4}, gate: {name: llm-judge, model: o3}}",
        )
    )
    assert config.policies["default"].rules[0].plan.models == ("glm-4.5", "claude-sonnet-4")
