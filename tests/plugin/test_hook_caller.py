"""Hooks go through pluggy's hook caller: wrappers, tryfirst/trylast and firstresult work as pluggy documents."""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyd.errors import PluginError
from policyd.plugin import hookimpl, hookspec
from policyd.plugin.manager import PluginHost, default_host
from policyd.plugin.specs import StrategySpec, ValidatorSpec
from policyd.types import OutcomeStatus


def _plugin(name: str, **hooks: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, fn)
    return module


async def _run(ctx):  # pragma: no cover - never run here
    return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED)


def _no_validator(ref, params):  # pragma: no cover - never built here
    raise AssertionError("not built in these tests")


class _PickSpecs:
    """A temporary firstresult hook, added to a host to prove the host's call path honours it."""

    @hookspec(firstresult=True)
    def policyd_pick(self, names: list[str]) -> str | None:
        """Stops at first non-None result."""


def _host_with_pick(*plugins: tuple[str, object]) -> PluginHost:
    host = PluginHost()
    host.pm.add_hookspecs(_PickSpecs)
    for name, plugin in plugins:
        host.add(plugin, name, version="1.0", origin="direct")
    return host


def test_a_wrapper_sees_and_alters_a_firstresult_hooks_result():
    seen: list[object] = []

    @hookimpl(wrapper=True)
    def policyd_pick(names):
        result = yield
        seen.append(result)
        return result.upper()

    host = _host_with_pick(
        ("plain", _plugin("plain", policyd_pick=hookimpl(lambda names: names[0]))),
        ("wrap", _plugin("wrap", policyd_pick=policyd_pick)),
    )
    assert host.call("policyd_pick", names=["cheap", "strong"]) == "CHEAP"
    assert seen == ["cheap"]


def test_an_old_style_hookwrapper_can_replace_the_result():
    @hookimpl(hookwrapper=True)
    def policyd_pick(names):
        outcome = yield
        outcome.force_result(f"{outcome.get_result()}!")

    host = _host_with_pick(
        ("plain", _plugin("plain", policyd_pick=hookimpl(lambda names: names[-1]))),
        ("old", _plugin("old", policyd_pick=policyd_pick)),
    )
    assert host.call("policyd_pick", names=["cheap", "strong"]) == "strong!"


def test_firstresult_stops_at_the_first_non_none_and_tryfirst_goes_first():
    calls: list[str] = []

    def impl(name: str, answer: str | None, **opts: bool):
        def policyd_pick(names):
            calls.append(name)
            return answer

        return _plugin(name, policyd_pick=hookimpl(**opts)(policyd_pick))

    host = _host_with_pick(
        ("early", impl("early", "early-answer", tryfirst=True)),
        ("late", impl("late", "late-answer", trylast=True)),
        ("none", impl("none", None)),
    )
    assert host.call("policyd_pick", names=[]) == "early-answer"
    assert calls == ["early"]  # firstresult: nobody after the first answer runs


def test_registration_hooks_follow_tryfirst_and_trylast():
    order: list[str] = []

    def plugin(name: str, **opts: bool) -> types.ModuleType:
        def policyd_register_strategies(register):
            order.append(name)
            register(StrategySpec(name=f"{name}-strategy", run=_run))

        return _plugin(name, policyd_register_strategies=hookimpl(**opts)(policyd_register_strategies))

    host = PluginHost()
    # pluggy calls the last registered first, except that tryfirst/trylast move an implementation.
    host.add(plugin("first", tryfirst=True), "first", version="1", origin="direct")
    host.add(plugin("last", trylast=True), "last", version="1", origin="direct")
    host.add(plugin("a"), "a", version="1", origin="direct")
    host.add(plugin("b"), "b", version="1", origin="direct")
    registered = host.collect()
    assert order == ["first", "b", "a", "last"]
    assert registered.origins[("strategies", "last-strategy")] == "last"
    assert registered.origins[("strategies", "b-strategy")] == "b"


def test_a_registration_wrapper_runs_around_the_others_and_its_registrations_are_its_own():
    events: list[str] = []

    def policyd_register_validators(register):
        events.append("inner")

    @hookimpl(wrapper=True)
    def wrapping(register):
        events.append("before")
        result = yield
        events.append("after")
        register(ValidatorSpec(name="audited", factory=_no_validator))
        return result

    host = default_host(entry_points=False)
    host.add(
        _plugin("inner", policyd_register_validators=hookimpl(policyd_register_validators)),
        "inner",
        version="1",
        origin="direct",
    )
    host.add(_plugin("audit", policyd_register_validators=wrapping), "audit", version="4.2", origin="direct")
    registered = host.collect()
    assert events == ["before", "inner", "after"]
    assert registered.origins[("validators", "audited")] == "audit"
    assert registered.origins[("validators", "regex")] == "policyd_validators"


def test_a_wrapper_can_handle_an_inner_plugins_exception():
    @hookimpl(wrapper=True)
    def policyd_pick(names):
        try:
            return (yield)
        except RuntimeError:
            return "fallback"

    def broken(names):
        raise RuntimeError("upstream catalog unreachable")

    host = _host_with_pick(
        ("broken", _plugin("broken", policyd_pick=hookimpl(broken))),
        ("guard", _plugin("guard", policyd_pick=policyd_pick)),
    )
    assert host.call("policyd_pick", names=[]) == "fallback"


def test_an_exception_behind_a_wrapper_is_blamed_on_the_plugin_that_raised_it():
    @hookimpl(wrapper=True)
    def policyd_register_strategies(register):
        return (yield)

    def raising(register):
        raise ValueError("bad table")

    host = PluginHost()
    host.add(_plugin("raiser", policyd_register_strategies=hookimpl(raising)), "raiser", version="0.7", origin="x")
    host.add(_plugin("wrap", policyd_register_strategies=policyd_register_strategies), "wrap", version="1", origin="x")
    with pytest.raises(PluginError, match=r"^plugin raiser 0\.7: policyd_register_strategies raised ValueError"):
        host.collect()


def test_a_misspelt_hook_names_plugin_version_and_the_closest_hook():
    host = PluginHost()
    host.add(
        _plugin("typo", policyd_register_strategys=hookimpl(lambda register: None)), "typo", version="3.1", origin="x"
    )
    with pytest.raises(PluginError) as info:
        host.collect()
    assert str(info.value) == (
        "plugin typo 3.1: implements unknown hook 'policyd_register_strategys'; "
        "did you mean 'policyd_register_strategies'?"
    )


def test_an_optional_hook_for_another_version_is_not_an_error():
    host = default_host(entry_points=False)
    host.add(
        _plugin("future", policyd_register_futures=hookimpl(optionalhook=True)(lambda register: None)),
        "future",
        version="1",
        origin="x",
    )
    assert "single" in host.collect().strategies


def test_a_hook_with_a_wrong_argument_fails_registration_naming_the_plugin():
    host = PluginHost()
    with pytest.raises(PluginError, match=r"(?s)^plugin odd 0\.2: cannot be registered: .*'regster'"):
        host.add(
            _plugin("odd", policyd_register_strategies=hookimpl(lambda regster: None)), "odd", version="0.2", origin="x"
        )


@pytest.fixture
def raising_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An installed distribution ``acme-raise 4.5.6`` whose entry point ``acme_raise`` raises in a hook."""
    (tmp_path / "acme_raise.py").write_text(
        textwrap.dedent(
            """
            from policyd.api import hookimpl


            @hookimpl
            def policyd_register_transforms(register):
                raise KeyError("missing setting")
            """
        )
    )
    info = tmp_path / "acme_raise-4.5.6.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-raise\nVersion: 4.5.6\n")
    (info / "entry_points.txt").write_text("[policyd]\nacme_raise = acme_raise\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("POLICYD_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("POLICYD_PLUGINS_ALLOW", "acme_raise")
    sys.modules.pop("acme_raise", None)
    yield
    sys.modules.pop("acme_raise", None)


@pytest.mark.usefixtures("raising_distribution")
def test_an_entry_point_plugins_exception_names_its_distribution_version():
    host = default_host()
    assert host.info["acme_raise"].origin == "entry-point:acme-raise"
    with pytest.raises(PluginError, match=r"^plugin acme_raise 4\.5\.6: policyd_register_transforms raised KeyError"):
        host.collect()
