"""Plugins declare the plugin API they were written for; an incompatible one is refused at load."""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from policyd.cli.main import main
from policyd.daemon import DaemonOptions, build_daemon
from policyd.errors import ConfigError, PluginError
from policyd.plugin.compat import API_VERSION, parse_api_version
from policyd.plugin.manager import PluginHost, default_host

PLUGIN_SOURCE = """
from policyd.api import StrategySpec, OutcomeStatus, hookimpl

POLICYD_API = {api!r}


async def run(ctx):
    return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED)


@hookimpl
def policyd_register_strategies(register):
    register(StrategySpec(name="acme-echo", run=run))
"""


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Put an installed distribution ``acme-ep 1.2.3`` with entry point ``acme`` in group ``policyd`` on sys.path."""

    def make(api: str = "1.0") -> None:
        (tmp_path / "acme_ep").mkdir()
        (tmp_path / "acme_ep" / "__init__.py").write_text(PLUGIN_SOURCE.format(api=api))
        info = tmp_path / "acme_ep-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-ep\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text("[policyd]\nacme = acme_ep\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delenv("POLICYD_DISABLE_PLUGIN_AUTOLOAD", raising=False)
        monkeypatch.delenv("POLICYD_PLUGINS_ALLOW", raising=False)
        monkeypatch.delenv("POLICYD_PLUGINS_DENY", raising=False)

    sys.modules.pop("acme_ep", None)
    yield make
    sys.modules.pop("acme_ep", None)


def _module(api: object) -> types.ModuleType:
    module = types.ModuleType("versioned")
    module.POLICYD_API = api  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize("declared", ["1", "1.0", API_VERSION])
def test_a_plugin_for_this_api_loads(declared):
    host = PluginHost()
    host.add(_module(declared), "versioned", version="3.1", origin="direct")
    assert host.info["versioned"].api == declared


@pytest.mark.parametrize("declared", ["2.0", "0.9", "1.7"])
def test_a_plugin_for_another_major_or_a_newer_minor_is_refused_naming_both_versions(declared):
    host = PluginHost()
    with pytest.raises(PluginError) as info:
        host.add(_module(declared), "versioned", version="3.1", origin="direct")
    assert str(info.value).startswith(
        f"plugin versioned 3.1: written for policyd plugin API {declared}, "
        f"but this policyd provides plugin API {API_VERSION}"
    )
    assert "versioned" not in host.info


def test_a_malformed_declaration_is_refused_clearly():
    with pytest.raises(
        PluginError, match=r"plugin versioned 3\.1: POLICYD_API = banana: 'banana' is not an API version"
    ):
        PluginHost().add(_module("banana"), "versioned", version="3.1", origin="direct")


def test_api_versions_parse_as_major_minor():
    assert parse_api_version("1") == (1, 0)
    assert parse_api_version(" 2.13 ") == (2, 13)
    with pytest.raises(ValueError):
        parse_api_version("1.2.3")


def test_an_installed_entry_point_loads_with_its_distribution_version(install):
    install()
    host = default_host()
    info = host.info["acme"]
    assert (info.version, info.origin, info.api) == ("1.2.3", "entry-point:acme-ep", "1.0")
    assert "acme-echo" in host.collect().strategies


def test_an_entry_point_for_another_api_is_refused_at_load(install):
    install(api="2.0")
    with pytest.raises(PluginError, match=r"plugin acme 1\.2\.3: written for policyd plugin API 2\.0"):
        default_host()


def test_the_policy_files_allow_list_keeps_other_entry_points_out(install, write_config):
    install()
    path = write_config("""
        plugins: {allow: [someone-else]}
        policies: {default: {rules: [{name: r, plan: {strategy: single, params: {model: glm-4.5}}}]}}
    """)
    daemon = build_daemon(DaemonOptions(config_path=str(path), data_dir=path.parent / "data"))
    assert "acme" not in daemon.host.info
    assert "policyd_strategies" in daemon.host.info, "built-ins always load"


def test_file_and_environment_allow_lists_must_both_allow(install, monkeypatch):
    install()
    monkeypatch.setenv("POLICYD_PLUGINS_ALLOW", "acme")
    assert "acme" in default_host(allow=["acme"]).info
    assert "acme" not in default_host(allow=["other"]).info
    monkeypatch.setenv("POLICYD_PLUGINS_ALLOW", "other")
    assert "acme" not in default_host(allow=["acme"]).info


def test_the_policy_files_deny_list_refuses_a_plugin(install):
    install()
    assert "acme" not in default_host(deny=["acme"]).info


def test_a_bad_plugins_section_names_the_key(write_config):
    path = write_config("""
        plugins: {allow: acme, timeouts: {strategy_ms: -1}}
        policies: {default: {rules: [{name: r, plan: {strategy: single, params: {model: glm-4.5}}}]}}
    """)
    with pytest.raises(ConfigError, match=r"policy\.yaml: plugins\.allow: Input should be a valid list"):
        build_daemon(DaemonOptions(config_path=str(path), data_dir=path.parent / "data"))


def test_policyd_plugins_shows_version_api_and_origin_and_honours_the_allow_list(install, tmp_path, capsys):
    install()
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert f"plugin API {API_VERSION}" in out
    line = next(line for line in out.splitlines() if line.startswith("acme "))
    assert line.split()[:4] == ["acme", "1.2.3", "1.0", "entry-point:acme-ep"] and "strategy:acme-echo" in line
    policy = tmp_path / "only-builtins.yaml"
    policy.write_text(
        textwrap.dedent("""
        plugins: {allow: []}
        policies: {default: {rules: [{name: r, plan: {strategy: single, params: {model: glm-4.5}}}]}}
    """)
    )
    assert main(["plugins", "--config", str(policy)]) == 0
    assert "acme" not in capsys.readouterr().out
