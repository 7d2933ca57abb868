"""One way to blame a plugin: its name and version, whatever part of it failed."""

from __future__ import annotations

import types

import pytest

from policyd.errors import PluginError, ResourceExhausted
from policyd.plugin import hookimpl
from policyd.plugin.attribution import attributed, build, expect, plugin_label, raise_attributed
from policyd.plugin.manager import default_host
from policyd.plugin.specs import ProviderSpec, Registered, TransformSpec
from policyd.testing import make_engine, make_request


def registry() -> Registered:
    return Registered(origins={("strategies", "s"): "acme-plugins"}, versions={"acme-plugins": "2.1.0"})


def test_a_label_names_the_plugin_and_its_version_or_falls_back_to_the_extension_name():
    assert plugin_label(registry(), "strategies", "s") == "acme-plugins 2.1.0"
    assert plugin_label(registry(), "strategies", "unregistered") == "unregistered"


def test_a_plugins_exception_is_attributed_and_policyds_own_errors_pass_through():
    with pytest.raises(PluginError, match=r"^plugin acme-plugins 2\.1\.0: strategy 's' raised KeyError$") as info:
        with attributed("acme-plugins 2.1.0", "strategy 's'"):
            raise KeyError("secret")
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.raises(ResourceExhausted), attributed("acme-plugins 2.1.0", "strategy 's'"):
        raise ResourceExhausted("over budget")


def test_an_except_block_can_attribute_what_it_caught_and_cancellation_is_never_wrapped():
    with pytest.raises(PluginError, match=r"^plugin hooks 0\.3: policyd_register_models raised ValueError\('x'\)$"):
        try:
            raise ValueError("x")
        except ValueError:
            raise_attributed("hooks 0.3", "policyd_register_models", full=True)
    with pytest.raises(KeyboardInterrupt), attributed("p 1", "strategy 's'"):
        raise KeyboardInterrupt


def test_building_wraps_every_failure_with_its_repr_and_expect_checks_the_returned_type():
    def factory(name: str) -> object:
        raise ResourceExhausted(f"{name}: no quota")

    with pytest.raises(PluginError, match=r"plugin p 1: provider 'x' could not be built: ResourceExhausted\('x: no"):
        build("p 1", "provider 'x'", factory, "x")
    assert expect(3, int, "p 1", "transform 't'") == 3
    with pytest.raises(PluginError, match=r"plugin p 1: transform 't' returned str, not int"):
        expect("3", int, "p 1", "transform 't'")


def _plugin(**hooks: object) -> types.ModuleType:
    module = types.ModuleType("acme_plugins")
    for name, fn in hooks.items():
        setattr(module, name, hookimpl(fn))
    return module


def test_a_provider_that_cannot_be_built_names_its_plugin_and_version():
    def broken(name: str, settings: object) -> object:
        raise ValueError("no endpoint")

    def policyd_register_providers(register):
        register(ProviderSpec(kind="broken", factory=broken))

    host = default_host(entry_points=False)
    host.add(
        _plugin(policyd_register_providers=policyd_register_providers), "acme-plugins", version="2.1.0", origin="direct"
    )
    policy = """
providers: {up: {kind: broken}}
policies: {default: {rules: [{name: r, plan: {strategy: single, params: {model: glm-4.5}}}]}}
"""
    with pytest.raises(PluginError, match=r"plugin acme-plugins 2\.1\.0: provider 'up' could not be built: ValueError"):
        make_engine(host, policy)


async def test_a_raising_transform_names_its_plugin_and_version():
    def explode(request, params):
        raise RuntimeError("boom")

    def policyd_register_transforms(register):
        register(TransformSpec(name="explode", apply=explode))

    host = default_host(entry_points=False)
    host.add(
        _plugin(policyd_register_transforms=policyd_register_transforms),
        "acme-plugins",
        version="2.1.0",
        origin="direct",
    )
    policy = """
providers: {simulated: {kind: simulated, latency_scale: 0}}
policies:
  default:
    rules:
      - name: r
        plan: {strategy: single, params: {model: glm-4.5}, transforms: [{name: explode}]}
"""
    h = make_engine(host, policy)
    with pytest.raises(PluginError, match=r"plugin acme-plugins 2\.1\.0: transform 'explode' raised RuntimeError"):
        await h.complete(make_request("hi"))
