"""Embed plans at load time: embedding models only, on providers that can embed."""

from __future__ import annotations

import pytest

from policyd.errors import ConfigError

BASE = """
providers:
  simulated: {kind: simulated}
  claude: {kind: anthropic, base_url: "http://127.0.0.1:9"}
models:
  claude-embed: {provider: claude, upstream: x, input_usd_per_mtok: 0, output_usd_per_mtok: 0,
                 context_window: 10, license: proprietary, tags: [embedding], options: {dimensions: 4}}
policies:
  default:
    rules:
      - name: e
        plan: {strategy: embed, params: PARAMS}
"""


def test_an_embed_plan_on_anthropic_fails_check_saying_it_has_no_embedding_api(make_config):
    with pytest.raises(ConfigError) as info:
        make_config(BASE.replace("PARAMS", "{model: bge-m3, fallback: [claude-embed]}"))
    assert info.value.path == "policies.default.rules[0].plan.params.fallback[0]"
    assert "provider 'claude' (kind 'anthropic'), which has no embedding API" in info.value.problem


def test_an_embed_plan_on_a_chat_model_names_the_key(make_config):
    with pytest.raises(ConfigError) as info:
        make_config(BASE.replace("PARAMS", "{model: gpt-oss-120b}"))
    assert info.value.path == "policies.default.rules[0].plan.params.model"
    assert "gpt-oss-120b is not an embedding model" in info.value.problem


def test_an_embed_plan_loads_and_completions_skip_it(make_config):
    config = make_config(BASE.replace("PARAMS", "{model: bge-m3, fallback: [nomic-embed-text-v1.5]}"))
    plan = config.policies["default"].rules[0].plan
    assert plan.models == ("bge-m3", "nomic-embed-text-v1.5")


def test_an_embed_plan_refuses_request_transforms(make_config):
    text = BASE.replace("PARAMS", "{model: bge-m3}, transforms: [{name: compact-tools}]")
    with pytest.raises(ConfigError) as info:
        make_config(text)
    assert info.value.path == "policies.default.rules[0].plan.transforms"
