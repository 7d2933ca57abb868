"""The provider examples under ``examples/providers/`` load, and point their models at real provider kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyd.config import load_file

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "providers").glob("*.yaml"))
KEY_VARS = ("OPENROUTER_API_KEY", "DEEPSEEK_API_KEY", "MOONSHOT_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads_and_routes_to_a_non_simulated_provider(path, registered, monkeypatch):
    for var in (*KEY_VARS, "GEMINI_API_KEY", "VLLM_API_KEY"):
        monkeypatch.setenv(var, "example-key")
    config = load_file(path, registered)
    kinds = {p.kind for p in config.providers.values()}
    assert kinds & {"openai-compatible", "anthropic", "gemini"}
    used = {m for policy in config.policies.values() for rule in policy.rules for m in rule.plan.models}
    assert any(config.providers[config.catalog[m].provider].kind != "simulated" for m in used)


def test_examples_cover_local_servers_hosted_apis_anthropic_and_gemini():
    assert {p.stem for p in EXAMPLES} >= {"ollama", "llamacpp", "vllm", "hosted", "anthropic", "gemini"}
