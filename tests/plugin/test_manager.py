"""The plugin manager: built-ins via the public path, failures that name the plugin."""

from __future__ import annotations

import types

import pytest

from policyd.errors import PluginError
from policyd.plugin import hookimpl
from policyd.plugin.manager import PluginHost, default_host
from policyd.plugin.specs import StrategySpec
from policyd.types import Outcome, OutcomeStatus


def _plugin(name: str, **hooks: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))  # type: ignore[arg-type]
    return module


async def _run(ctx):  # pragma: no cover - never run here
    return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED)


def test_builtins_register_through_the_hooks():
    host = default_host(entry_points=False)
    registered = host.collect()
    assert {"single", "fallback"} <= set(registered.strategies)
    assert "simulated" in registered.providers
    assert registered.origins[("strategies", "single")] == "policyd_strategies"
    assert host.info["policyd_simulated"].origin == "builtin"


def test_a_temporary_plugin_adds_a_strategy():
    host = default_host(entry_points=False)

    def policyd_register_strategies(register):
        register(StrategySpec(name="echo", run=_run))

    host.add(
        _plugin("echo_plugin", policyd_register_strategies=policyd_register_strategies),
        "echo_plugin",
        version="9.9",
        origin="direct",
    )
    try:
        registered = host.collect()
        assert registered.strategies["echo"].run is _run
        assert registered.origins[("strategies", "echo")] == "echo_plugin"
    finally:
        host.remove("echo_plugin")
    assert "echo" not in host.collect().strategies


def test_misspelled_hook_fails_at_boot_naming_the_plugin():
    host = PluginHost()

    def policyd_register_strategys(register):  # typo
        pass

    host.add(
        _plugin("typo_plugin", policyd_register_strategys=policyd_register_strategys),
        "typo_plugin",
        version="1.0",
        origin="direct",
    )
    with pytest.raises(PluginError, match="typo_plugin"):
        host.collect()


def test_duplicate_names_name_both_plugins():
    host = default_host(entry_points=False)

    def policyd_register_strategies(register):
        register(StrategySpec(name="single", run=_run))

    host.add(
        _plugin("dup", policyd_register_strategies=policyd_register_strategies), "dup", version="0.3", origin="direct"
    )
    with pytest.raises(PluginError) as info:
        host.collect()
    assert "plugin dup 0.3" in str(info.value)
    assert "strategy 'single' is already registered by plugin policyd_strategies 0.1.0" in str(info.value)


def test_a_raising_hook_names_its_plugin_and_version():
    host = PluginHost()

    def policyd_register_validators(register):
        raise RuntimeError("boom")

    host.add(
        _plugin("broken", policyd_register_validators=policyd_register_validators),
        "broken",
        version="2.1",
        origin="direct",
    )
    with pytest.raises(PluginError, match=r"plugin broken 2\.1: policyd_register_validators raised RuntimeError"):
        host.collect()


def test_deny_list_skips_plugins(monkeypatch):
    monkeypatch.setenv("POLICYD_PLUGINS_DENY", "policyd_strategies")
    host = default_host(entry_points=False)
    assert "policyd_strategies" not in host.info
    assert "single" not in host.collect().strategies


def test_broken_builtin_import_names_the_module():
    host = PluginHost()
    with pytest.raises(PluginError, match=r"plugin policyd_no_such_plugin: failed to import policyd_plugins\.no_such"):
        host.load_builtins({"policyd_no_such_plugin": "policyd_plugins.no_such"})


def test_outcome_type_is_the_public_one():
    assert Outcome.__module__ == "policyd.types"
