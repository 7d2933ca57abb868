"""One entry-point pass for pydantic and the plugin host (``policyd serve``: :func:`policyd.discovery.adopt`).

Installed distributions are real ``*.dist-info`` directories on ``sys.path``; a pass is taken
over the path it saw, a changed path is scanned again, and pydantic is told to skip its own
scan only when there is no pydantic plugin to find.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from policyd import discovery
from policyd.plugin.manager import default_host

ROOT = Path(__file__).resolve().parents[2]

PLUGIN = """
from policyd.api import OutcomeStatus, StrategySpec, hookimpl

POLICYD_API = "1.0"


async def run(ctx):
    return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED)


@hookimpl
def policyd_register_strategies(register):
    register(StrategySpec(name="{name}", run=run))
"""

PYDANTIC_PLUGIN = """
import os


class Plugin:
    def new_schema_validator(self, schema, schema_type, schema_type_path, schema_kind, config, plugin_settings):
        os.environ["ACME_PYDANTIC_PLUGIN_SAW"] = schema_type.__name__
        return None, None, None


plugin = Plugin()
"""


def install(site: Path, dist: str, version: str, entry_points: str, module: str, source: str) -> None:
    """A distribution ``dist`` with ``entry_points.txt`` and its module, on the directory ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No pass adopted, ``PYDANTIC_DISABLE_PLUGINS`` unset (and restored after), autoload on."""
    monkeypatch.setattr(discovery, "_adopted", {})
    monkeypatch.setenv(discovery.PYDANTIC_SWITCH, "")
    monkeypatch.delenv(discovery.PYDANTIC_SWITCH)
    monkeypatch.delenv("POLICYD_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("POLICYD_PLUGINS_ALLOW", raising=False)
    return monkeypatch


def test_the_adopted_pass_is_what_the_plugin_host_loads(tmp_path: Path, clean: pytest.MonkeyPatch):
    install(tmp_path, "acme-one", "1.4.0", "[policyd]\nacme_one = acme_one\n", "acme_one", PLUGIN.format(name="one"))
    clean.syspath_prepend(str(tmp_path))
    found = discovery.adopt()
    assert discovery.Found("acme_one", "acme_one", "policyd", "acme-one", "1.4.0") in found
    (tmp_path / "acme_one-1.4.0.dist-info" / "entry_points.txt").write_text("")  # the pass is not re-read
    host = default_host()
    assert host.info["acme_one"].origin == "entry-point:acme-one"
    assert host.info["acme_one"].version == "1.4.0"
    assert "one" in host.collect().strategies


def test_a_pass_over_another_sys_path_is_not_used(tmp_path: Path, clean: pytest.MonkeyPatch):
    before = {f.name for f in discovery.adopt() if f.group == "policyd"}  # whatever this venv has installed
    later = tmp_path / "later"
    install(later, "acme-two", "2.0", "[policyd]\nacme_two = acme_two\n", "acme_two", PLUGIN.format(name="two"))
    clean.syspath_prepend(str(later))  # installed after the pass: sys.path changed, so it is scanned again
    assert {f.name for f in discovery.entry_points("policyd")} == before | {"acme_two"}
    assert "acme_two" in default_host().info


def test_with_no_pydantic_plugin_installed_pydantic_is_told_to_skip_its_scan(clean: pytest.MonkeyPatch):
    found = discovery.adopt()
    assert not [f for f in found if f.group == "pydantic"]
    assert os.environ[discovery.PYDANTIC_SWITCH] == "__all__"


def test_a_users_pydantic_disable_plugins_is_left_as_set(clean: pytest.MonkeyPatch):
    clean.setenv(discovery.PYDANTIC_SWITCH, "logfire")
    discovery.adopt()
    assert os.environ[discovery.PYDANTIC_SWITCH] == "logfire"


def test_an_installed_pydantic_plugin_still_runs_in_a_served_process(tmp_path: Path):
    install(tmp_path, "acme-pyd", "0.3", "[pydantic]\nacme = acme_pyd:plugin\n", "acme_pyd", PYDANTIC_PLUGIN)
    script = """
import json, os, sys
from policyd import discovery
found = discovery.adopt()  # what `policyd serve` does before its first model
from pydantic import BaseModel
class Probe(BaseModel):
    x: int
switch, saw = os.environ.get("PYDANTIC_DISABLE_PLUGINS"), os.environ.get("ACME_PYDANTIC_PLUGIN_SAW")
print(json.dumps({"switch": switch, "saw": saw, "found": [f.name for f in found if f.group == "pydantic"]}))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("PYDANTIC_DISABLE_PLUGINS", "ACME_PYDANTIC_PLUGIN_SAW")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT), str(ROOT / "plugins")])
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"switch": None, "saw": "Probe", "found": ["acme"]}
