"""The OpenTelemetry beta packages' private modules are read in one place, and a move fails clearly."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from policyd.telemetry import semconv as sc

ROOT = Path(__file__).resolve().parents[2]


def _modules_named_in(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "_incubating" in node.value:
            names.add(node.value)
    return names


def test_only_semconv_reads_the_incubating_modules():
    readers = sorted(
        str(path.relative_to(ROOT))
        for folder in ("policyd", "plugins", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if "build" not in path.parts
        and "_incubating" in path.read_text(encoding="utf-8")
        and any("_incubating" in name for name in _modules_named_in(path))
    )
    assert readers == ["policyd/telemetry/semconv.py"]


@pytest.mark.parametrize("module", sc.INCUBATING_MODULES)
def test_the_incubating_modules_policyd_reads_are_where_it_expects(module: str):
    assert sc._incubating(module).__name__ == module


def test_the_names_read_from_them_are_the_ones_policyd_emits():
    # A release that renames or moves an attribute changes these; the dashboards built on them would break.
    assert (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME) == ("gen_ai.operation.name", "gen_ai.provider.name")
    assert (sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL) == ("gen_ai.request.model", "gen_ai.response.model")
    assert (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_OUTPUT_TOKENS) == (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
    )
    assert (sc.METRIC_TOKEN_USAGE, sc.METRIC_OPERATION_DURATION) == (
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
    )
    assert sc.OPERATION_CHAT == "chat" and sc.gen_ai_provider_name("anthropic") == "anthropic"


def test_a_moved_module_fails_naming_it_the_installed_version_and_the_fix():
    with pytest.raises(ImportError) as info:
        sc._incubating("opentelemetry.semconv._incubating.attributes.gen_ai_attributes_moved")
    message = str(info.value)
    assert "opentelemetry-semantic-conventions 0." in message
    assert "has no opentelemetry.semconv._incubating.attributes.gen_ai_attributes_moved" in message
    assert "install the version pyproject.toml allows, or update this module" in message
