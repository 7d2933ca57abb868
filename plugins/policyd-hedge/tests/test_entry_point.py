"""The installed package, found the way production finds it: a daemon process and its entry points.

These tests need the package installed (``pip install ./plugins/policyd-hedge``):
they start ``policyd serve`` as a separate process with autoload on.
"""

from __future__ import annotations

import importlib.metadata

import pytest

from policyd.v1 import policyd_pb2 as pb

POLICY = """
providers:
  simulated: {kind: simulated, latency_scale: 1.0}
models:
  glm-4.5:
    options: {simulated: {ttft_ms: 20000}}   # a primary far slower than its hedge delay
plugins:
  allow: [hedge]
policies:
  default:
    rules:
      - name: hedged
        plan:
          strategy: hedged
          params: {primary: glm-4.5, backup: gpt-oss-120b, delay_ms: 150}
"""


def test_the_package_is_installed_with_its_entry_point():
    eps = importlib.metadata.entry_points(group="policyd", name="hedge")
    assert [ep.value for ep in eps] == ["policyd_hedge"], "pip install ./plugins/policyd-hedge first"


def test_policyd_plugins_lists_it_with_version_api_and_what_it_provides(policyd_cli):
    listing = policyd_cli("plugins", env={"POLICYD_PLUGINS_ALLOW": "hedge"})
    assert listing.returncode == 0, listing.stderr
    line = next(line for line in listing.stdout.splitlines() if line.startswith("hedge "))
    assert line.split()[:4] == ["hedge", "0.1.0", "1.0", "entry-point:policyd-hedge"]
    assert "strategy:hedged" in line and "validator:word-limit" in line


def test_the_daemon_runs_the_hedged_strategy_from_the_installed_package(policyd_daemon):
    daemon = policyd_daemon(POLICY, env={"POLICYD_PLUGINS_ALLOW": "hedge"})
    stub = daemon.stub()
    resp = stub.Complete(pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")]), timeout=15)
    assert resp.explanation.strategy == "hedged"
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
    with pytest.raises(RuntimeError, match=r"unknown strategy 'hedged'"):
        policyd_daemon(POLICY, env={"POLICYD_PLUGINS_ALLOW": "someone-else"})
