"""The installed package, found the way production finds it: a daemon process and its entry points.

These tests need the package installed (``pip install ./plugins/policyd-hedge``):
they start ``policyd serve`` as a separate process with autoload on.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
from pathlib import Path

import pytest

from policyd.v1 import policyd_pb2 as pb

PROJECT = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DIST = PROJECT["name"]
"""The distribution name (``policyd-hedge``); a renamed copy of the template follows its pyproject."""
(PLUGIN, MODULE), *_ = PROJECT["entry-points"]["policyd"].items()
"""The entry point's name (``hedge``: what allow-lists and ``policyd plugins`` show) and module."""
STRATEGY = importlib.import_module(f"{MODULE}.hedged").SPEC.name
VALIDATOR = importlib.import_module(f"{MODULE}.word_limit").SPEC.name

POLICY = """
providers:
  simulated: {kind: simulated, latency_scale: 1.0}
models:
  glm-4.5:
    options: {simulated: {ttft_ms: 20000}}   # a primary far slower than its hedge delay
plugins:
  allow: [{plugin}]
policies:
  default:
    rules:
      - name: hedged
        plan:
          strategy: {strategy}
          params: {primary: glm-4.5, backup: gpt-oss-120b, delay_ms: 150}
"""


def policy() -> str:
    return POLICY.replace("{plugin}", PLUGIN).replace("{strategy}", STRATEGY)


def test_the_package_is_installed_with_its_entry_point():
    eps = importlib.metadata.entry_points(group="policyd", name=PLUGIN)
    assert [ep.value for ep in eps] == [MODULE], f"pip install the folder of {DIST} first"
    assert importlib.metadata.version(DIST) == PROJECT["version"]


def test_policyd_plugins_lists_it_with_version_api_and_what_it_provides(policyd_cli):
    listing = policyd_cli("plugins", env={"POLICYD_PLUGINS_ALLOW": PLUGIN})
    assert listing.returncode == 0, listing.stderr
    line = next(line for line in listing.stdout.splitlines() if line.startswith(f"{PLUGIN} "))
    assert line.split()[:4] == [PLUGIN, PROJECT["version"], "1.0", f"entry-point:{DIST}"]
    assert f"strategy:{STRATEGY}" in line and f"validator:{VALIDATOR}" in line


def test_the_daemon_runs_the_hedged_strategy_from_the_installed_package(policyd_daemon):
    daemon = policyd_daemon(policy(), env={"POLICYD_PLUGINS_ALLOW": PLUGIN})
    stub = daemon.stub()
    resp = stub.Complete(pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")]), timeout=15)
    assert resp.explanation.strategy == STRATEGY
    assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    assert "simulated" in resp.output.content
    by_model = {a.model: a for a in resp.attempts}
    assert set(by_model) == {"glm-4.5", "gpt-oss-120b"}
    assert by_model["glm-4.5"].error.startswith("cancelled after"), "the slow primary lost and was cancelled"
    assert by_model["glm-4.5"].cost_usd > 0 and by_model["gpt-oss-120b"].cost_usd > 0
    assert resp.total_cost_usd == pytest.approx(sum(a.cost_usd for a in resp.attempts))
    explained = stub.Explain(pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")]), timeout=15)
    assert [s.model for s in explained.explanation.steps] == ["glm-4.5", "gpt-oss-120b"]


def test_an_allow_list_without_it_keeps_it_out(policyd_daemon):
    with pytest.raises(RuntimeError, match=f"unknown strategy '{STRATEGY}'"):
        policyd_daemon(policy(), env={"POLICYD_PLUGINS_ALLOW": "someone-else"})
