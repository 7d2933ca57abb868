"""``policyd plugins --json``: the plugin list for tools."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from policyd.cli.main import main
from policyd.plugin.compat import API_VERSION


def test_plugins_json_lists_builtins_with_hooks_and_what_they_provide(capsys):
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["plugin_api"] == API_VERSION
    by_name = {plugin["name"]: plugin for plugin in data["plugins"]}
    strategies = by_name["policyd_strategies"]
    assert strategies["origin"] == "builtin"
    assert strategies["hooks"] == ["policyd_register_strategies", "policyd_register_validators"]
    assert {"kind": "strategy", "name": "single"} in strategies["provides"]
    assert {"kind": "provider", "name": "simulated"} in by_name["policyd_simulated"]["provides"]
    assert data["plugins"][0]["name"] == "policyd_simulated"  # load order, as the table prints it


def test_plugins_json_shows_an_entry_point_plugin_with_its_distribution(tmp_path: Path, monkeypatch, capsys):
    (tmp_path / "acme_json.py").write_text(
        textwrap.dedent(
            """
            from policyd.api import OutcomeStatus, StrategySpec, hookimpl

            POLICYD_API = "1.0"


            async def run(ctx):
                return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED)


            @hookimpl(tryfirst=True)
            def policyd_register_strategies(register):
                register(StrategySpec(name="acme-json", run=run))
            """
        )
    )
    info = tmp_path / "acme_json-2.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-json\nVersion: 2.0.1\n")
    (info / "entry_points.txt").write_text("[policyd]\nacme_json = acme_json\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("POLICYD_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("POLICYD_PLUGINS_ALLOW", "acme_json")
    assert main(["plugins", "--json"]) == 0
    acme = next(p for p in json.loads(capsys.readouterr().out)["plugins"] if p["name"] == "acme_json")
    assert acme == {
        "name": "acme_json",
        "version": "2.0.1",
        "api": "1.0",
        "origin": "entry-point:acme-json",
        "hooks": ["policyd_register_strategies"],
        "provides": [{"kind": "strategy", "name": "acme-json"}],
    }


@pytest.fixture(autouse=True)
def _forget_fixture_module():
    import sys

    yield
    sys.modules.pop("acme_json", None)
