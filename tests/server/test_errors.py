"""Failures inside the daemon become statuses that name the culprit, never a crash or a leak."""

from __future__ import annotations

import logging
import types

import grpc
import pytest

from policyd.plugin import hookimpl
from policyd.plugin.manager import default_host
from policyd.plugin.specs import StrategySpec
from policyd.v1 import policyd_pb2 as pb

POLICY = """
providers:
  simulated: {kind: simulated, latency_scale: 0}
policies:
  default:
    rules:
      - name: broken
        match: {tasks: [broken]}
        plan: {strategy: explodes}
      - name: wrong-type
        match: {tasks: [wrong]}
        plan: {strategy: returns-a-string}
      - name: rest
        plan: {strategy: single, params: {model: glm-4.5}}
"""


def _host_with_bad_strategies():
    async def explodes(ctx):
        raise RuntimeError("secret sk-canary-123 inside")

    async def returns_a_string(ctx):
        return "not an outcome"

    module = types.ModuleType("bad_strategies")

    def policyd_register_strategies(register):
        register(StrategySpec(name="explodes", run=explodes))
        register(StrategySpec(name="returns-a-string", run=returns_a_string))

    module.policyd_register_strategies = hookimpl(policyd_register_strategies)  # type: ignore[attr-defined]
    host = default_host(entry_points=False)
    host.add(module, "bad_strategies", version="0.0.1", origin="direct")
    return host


def _req(task: str) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")], task=task)


async def test_a_raising_strategy_is_internal_naming_the_plugin_without_its_message(live, caplog):
    _, _, stub = await live(POLICY, host=_host_with_bad_strategies())
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(_req("broken"))
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert info.value.details() == "plugin bad_strategies 0.0.1: strategy 'explodes' raised RuntimeError"
    assert "sk-canary-123" not in info.value.details()


async def test_a_strategy_returning_the_wrong_type_is_named(live):
    _, _, stub = await live(POLICY, host=_host_with_bad_strategies())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(_req("wrong"))
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "strategy 'returns-a-string' returned str, not Outcome" in info.value.details()


async def test_the_daemon_keeps_serving_after_plugin_failures(live):
    _, _, stub = await live(POLICY, host=_host_with_bad_strategies())
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Complete(_req("broken"))
    resp = await stub.Complete(_req("chat"))
    assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED


async def test_unexpected_errors_are_internal_with_an_incident_id(live, caplog, monkeypatch):
    daemon, _, stub = await live(POLICY, host=_host_with_bad_strategies())

    def fail(request):
        raise KeyError("internal detail")

    monkeypatch.setattr(daemon.engine, "explain", fail)
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Explain(_req("chat"))
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert info.value.details().startswith("internal error (incident ")
    assert "internal detail" not in info.value.details()
    incident = info.value.details().split()[3].rstrip(";")
    assert any(incident in r.getMessage() for r in caplog.records)
