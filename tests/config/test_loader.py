"""Policy files: valid ones resolve into Config; bad ones name file, key path and expectation."""

from __future__ import annotations

import pytest

from policyd.config import load_default, load_file
from policyd.errors import ConfigError

GOOD = """
version: v7
providers:
  simulated: {kind: simulated, latency_scale: 0}
models:
  glm-4.5: {input_usd_per_mtok: 0.5}
  my-local:
    provider: simulated
    upstream: local/my-model
    input_usd_per_mtok: 0
    output_usd_per_mtok: 0
    context_window: 8192
    license: apache-2.0
    local: true
policies:
  default:
    rules:
      - name: coding
        match: {tasks: [coding], stakes: [low, normal]}
        plan: {strategy: fallback, params: {models: [glm-4.5, my-local]}}
"""


def test_valid_file_resolves_models_overrides_and_plans(make_config):
    config = make_config(GOOD)
    assert config.version == "v7"
    assert config.catalog["glm-4.5"].input_usd_per_mtok == 0.5
    assert config.catalog["glm-4.5"].output_usd_per_mtok == 2.2, "fields not overridden keep the catalog value"
    assert config.catalog["my-local"].local is True
    rule = config.policies["default"].rules[0]
    assert rule.plan.models == ("glm-4.5", "my-local")
    assert rule.plan.params.models == ["glm-4.5", "my-local"]


@pytest.mark.parametrize(
    ("written", "read"), [("", "off"), (", stream_draft: off", "off"), (", stream_draft: provisional", "provisional")]
)
def test_stream_draft_is_off_unless_provisional(make_config, written, read):
    plan = "params: {models: [glm-4.5, my-local]}"
    config = make_config(GOOD.replace(plan + "}", plan + written + "}"))
    assert config.policies["default"].rules[0].plan.stream_draft == read


def test_version_defaults_to_a_hash_of_the_file(make_config):
    a = make_config(GOOD.replace("version: v7\n", ""))
    b = make_config(GOOD.replace("version: v7\n", "") + "\n# changed\n")
    assert len(a.version) == 12 and a.version != b.version


@pytest.mark.parametrize(
    ("change", "path", "expected"),
    [
        (
            ("strategy: fallback", "strategy: fallbak"),
            "policies.default.rules[0].plan.strategy",
            "unknown strategy 'fallbak' (known: draft-validate, embed, fail-fast, fallback, route, single, "
            "thinking-escalation)",
        ),
        (
            ("strategy: fallback", "strategy: fallbak"),
            "policies.default.rules[0].plan.strategy",
            "did you mean 'fallback'?",
        ),
        (
            ("models: [glm-4.5, my-local]", "models: [glm-45]"),
            "policies.default.rules[0].plan.params",
            "unknown model 'glm-45'",
        ),
        (
            ("models: [glm-4.5, my-local]", "modelz: [glm-4.5]"),
            "policies.default.rules[0].plan.params.modelz",
            "unknown key 'modelz' (known: effort, models); did you mean 'models'?",
        ),
        (
            ("kind: simulated, latency_scale: 0", "kind: simulated, latency_scal: 0"),
            "providers.simulated.latency_scal",
            "did you mean 'latency_scale'?",
        ),
        (
            ("version: v7", "version: v7\ndefaults: {deadline_mss: 5}"),
            "defaults.deadline_mss",
            "unknown key 'deadline_mss' (known: deadline_ms, max_cost_usd, max_deadline_ms, policy, tenant)",
        ),
        (
            ("stakes: [low, normal]", "stakes: [low, hihg]"),
            "policies.default.rules[0].match.stakes[1]",
            "'low', 'normal', 'high' or 'critical'",
        ),
        (
            ("kind: simulated, latency_scale: 0", "kind: simulatd"),
            "providers.simulated.kind",
            "unknown provider kind 'simulatd'",
        ),
        (
            ("params: {models: [glm-4.5, my-local]}}", "params: {models: [glm-4.5, my-local]}, stream_draft: eager}"),
            "policies.default.rules[0].plan.stream_draft",
            "'off' or 'provisional'",
        ),
        (("latency_scale: 0", "latency_scale: -1"), "providers.simulated.latency_scale", "greater than or equal to 0"),
        (("input_usd_per_mtok: 0.5", "input_usd_per_mtok: cheap"), "models.glm-4.5.input_usd_per_mtok", "valid number"),
        (("    upstream: local/my-model\n", ""), "models.my-local", "not in any catalog, so it needs upstream"),
        (("version: v7", "version: v7\npolicys: {}"), "policys", "unknown key 'policys' (known: auth, budgets"),
        (("version: v7", "version: v7\npolicys: {}"), "policys", "did you mean 'policies'?"),
    ],
)
def test_errors_name_file_key_path_and_expectation(write_config, registered, change, path, expected):
    file = write_config(GOOD.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_file(file, registered)
    message = str(info.value)
    assert message.startswith(f"{file}: {path}: "), message
    assert expected in message


def test_unknown_default_policy_is_named(write_config, registered):
    file = write_config(GOOD + "defaults: {policy: main}\n")
    with pytest.raises(ConfigError, match=r"defaults\.policy: unknown policy 'main' \(known: default\)"):
        load_file(file, registered)


def test_yaml_syntax_error_names_line(write_config, registered):
    file = write_config("policies:\n  default: [\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: not valid YAML"):
        load_file(file, registered)


def test_missing_file_and_non_mapping(tmp_path, registered):
    with pytest.raises(ConfigError, match="cannot read"):
        load_file(tmp_path / "nope.yaml", registered)
    file = tmp_path / "list.yaml"
    file.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level, got list"):
        load_file(file, registered)


def test_bundled_default_loads_with_the_seed_catalog(registered):
    config = load_default(registered)
    assert config.source == "<bundled default>"
    assert {
        "qwen3-coder-480b-a35b",
        "glm-4.5",
        "kimi-k2",
        "gpt-oss-120b",
        "llama-3.1-8b",
        "gemma-3-270m",
        "claude-sonnet-4",
        "claude-opus-4.1",
        "o3",
    } <= set(config.catalog)
    assert all(m.provider == "simulated" for m in config.catalog.values())
    assert config.defaults.policy in config.policies
