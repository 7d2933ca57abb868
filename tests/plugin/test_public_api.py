"""Plugins see only the public API: first-party plugins import nothing else, and it all resolves."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import policyd.api
from policyd.plugin.compat import API_VERSION, parse_api_version
from policyd.plugin.manager import BUILTIN_PLUGINS

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
TEST_MAY_IMPORT = ("policyd.api", "policyd.testing", "policyd.v1")
"""A plugin's tests may also use the testing kit and the gRPC contract (both public)."""
SUBSYSTEM_ADAPTERS = {"policyd_replay": ("policyd.eval.",)}  # by plugin name
"""The one exception: the ``replay`` provider exists for ``policyd eval`` and reads its
recorded-dataset format; that format is the eval subsystem's, not part of the plugin API."""


def policyd_imports(path: Path) -> list[str]:
    """Modules under ``policyd`` that a file imports (anywhere in it)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "policyd" else [f"policyd.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found += [n for n in names if n == "policyd" or n.startswith("policyd.")]
    return found


def plugin_of(path: Path) -> str | None:
    """The built-in plugin (name) a file under plugins/ belongs to, if any."""
    module = ".".join(path.relative_to(PLUGINS).with_suffix("").parts)
    for name, package in BUILTIN_PLUGINS.items():
        if module == package or module.startswith(f"{package}."):
            return name
    return None


def plugin_files() -> list[Path]:
    return sorted(p for p in PLUGINS.rglob("*.py") if "build" not in p.parts)


@pytest.mark.parametrize("path", plugin_files(), ids=lambda p: str(p.relative_to(PLUGINS)))
def test_first_party_plugins_import_only_the_public_api(path: Path):
    parts = path.relative_to(PLUGINS).parts
    adapters = SUBSYSTEM_ADAPTERS.get(plugin_of(path) or "", ())
    allowed = TEST_MAY_IMPORT if "tests" in parts else ("policyd.api", *adapters)
    private = [m for m in policyd_imports(path) if not m.startswith(allowed)]
    assert not private, (
        f"{path.relative_to(PLUGINS)} imports private {private}: use policyd.api (add it there if needed)"
    )


def test_every_public_name_resolves():
    for name in policyd.api.__all__:
        assert getattr(policyd.api, name) is not None, name


@pytest.mark.parametrize("module", BUILTIN_PLUGINS.values())
def test_builtins_declare_the_api_they_are_written_for(module: str):
    declared = getattr(importlib.import_module(module), "POLICYD_API", None)
    assert declared is not None, f"{module} declares no POLICYD_API"
    assert parse_api_version(declared)[0] == parse_api_version(API_VERSION)[0]
