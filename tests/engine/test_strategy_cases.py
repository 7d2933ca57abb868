"""Routing cases as data: every ``tests/cases/strategies/*.yaml`` runs through the real engine.

A case gives a request, a policy and scripted model behaviour, and expects the
outcome's status and output, its attempts (role, model, effort, verdict) and which
models were never called. Every case also checks the cost arithmetic: each model
attempt costs its tokens at list price, free validators cost nothing, and the
total is their sum.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from policyd.config import load_text
from policyd.engine import Engine
from policyd.plugin.manager import PluginHost
from policyd.types import (
    Constraints,
    GenerationParams,
    Message,
    Outcome,
    Request,
    ResponseFormat,
    Role,
    Stakes,
    Tool,
)
from tests.scripted import ScriptedPlugin, ScriptedProvider

CASES = sorted((Path(__file__).parent.parent / "cases" / "strategies").glob("*.yaml"))


@pytest.fixture
def scripted_host(host: PluginHost) -> Iterator[PluginHost]:
    host.add(ScriptedPlugin(), "scripted-test", version="test", origin="direct")
    yield host
    host.remove("scripted-test")


def build_engine(case: dict[str, Any], host: PluginHost, source: str) -> Engine:
    registered = host.collect()
    doc = dict(case["policy"])
    doc.setdefault("providers", {})["scripted"] = {"kind": "scripted", "script": case.get("script", {})}
    catalog_ids = [m.id for cat in registered.catalogs.values() for m in cat.models]
    models: dict[str, Any] = {model_id: {"provider": "scripted"} for model_id in catalog_ids}
    models.update(doc.get("models", {}))
    doc["models"] = models
    return Engine(load_text(yaml.safe_dump(doc), registered, source), registered)


def build_request(spec: dict[str, Any]) -> Request:
    messages = tuple(Message(role=Role(m["role"]), content=m["content"]) for m in spec.get("messages", [])) or (
        Message(role=Role.USER, content=spec["prompt"]),
    )
    fmt = ResponseFormat()
    if "json_schema" in spec:
        fmt = ResponseFormat(kind="json_schema", json_schema=spec["json_schema"], schema_name="answer")
    deadline_ms = spec.get("deadline_ms", 10_000)
    return Request(
        request_id="case",
        messages=messages,
        tools=tuple(Tool(name=t["name"], parameters=t.get("parameters", {})) for t in spec.get("tools", [])),
        params=GenerationParams(max_output_tokens=spec.get("max_output_tokens"), response_format=fmt),
        task=spec.get("task", ""),
        stakes=Stakes(spec.get("stakes", "normal")),
        constraints=Constraints(
            max_cost_usd=spec.get("max_cost_usd"),
            allowed_licenses=frozenset(spec.get("allowed_licenses", [])),
        ),
        deadline=time.monotonic() + deadline_ms / 1000,
    )


def effort_name(value: object) -> str:
    """YAML reads a bare ``off`` as false."""
    return "off" if value is False else str(value)


def check_attempts(outcome: Outcome, expected: list[dict[str, Any]]) -> None:
    got = [
        (a.role.value, a.model, a.effort.value, a.verdict.kind.value if a.verdict else None) for a in outcome.attempts
    ]
    want = [(e["role"], e.get("model", ""), effort_name(e.get("effort", "off")), e.get("verdict")) for e in expected]
    assert got == want, f"attempts differ:\n got {got}\nwant {want}"
    for attempt, e in zip(outcome.attempts, expected, strict=True):
        if "reason_contains" in e:
            assert attempt.verdict is not None and e["reason_contains"] in attempt.verdict.reason, attempt.verdict
        if "error_contains" in e:
            assert e["error_contains"] in attempt.error, attempt.error
        if "validator" in e:
            assert attempt.verdict is not None and attempt.verdict.validator == e["validator"]
        if "output" in e:  # a rejected draft, set aside on its attempt
            assert attempt.output is not None and attempt.output.content == e["output"], attempt.output


def check_costs(outcome: Outcome, engine: Engine) -> None:
    for attempt in outcome.attempts:
        if not attempt.model:
            assert attempt.cost_usd == 0.0, "a validator that calls no model is free"
            continue
        model = engine.config.catalog[attempt.model]
        assert math.isclose(attempt.cost_usd, model.cost_usd(attempt.input_tokens, attempt.output_tokens))
    assert math.isclose(outcome.total_cost_usd, sum(a.cost_usd for a in outcome.attempts))


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
async def test_routing_case(path: Path, scripted_host: PluginHost) -> None:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))  # noqa: ASYNC240 (a small local file)
    engine = build_engine(case, scripted_host, path.name)
    request = build_request(case["request"])
    outcome = await engine.complete(request)
    provider = engine.runtime.providers["scripted"]
    assert isinstance(provider, ScriptedProvider)
    expect = case["expect"]

    assert outcome.status.value == expect["status"], [(a.role, a.model, a.verdict, a.error) for a in outcome.attempts]
    if "output" in expect and expect["output"] is None:
        assert outcome.output is None, f"rejected text returned as output: {outcome.output}"
    elif "output" in expect:
        assert outcome.output is not None and outcome.output.content == expect["output"]
    if "output_tool_call" in expect:
        assert outcome.output is not None
        assert [c.name for c in outcome.output.tool_calls] == [expect["output_tool_call"]]
    check_attempts(outcome, expect["attempts"])
    check_costs(outcome, engine)
    called = {c.model.id for c in provider.calls}
    for model in expect.get("not_called", []):
        assert model not in called, f"{model} was called"
    for i, want in enumerate(expect.get("calls", [])):
        call = provider.calls[i]
        assert call.model.id == want["model"]
        if "prompt_contains" in want:
            assert want["prompt_contains"] in json.dumps([m.content for m in call.messages])
        if "logprobs" in want:
            assert call.logprobs is want["logprobs"]
        if "tools" in want:
            assert [t.name for t in call.tools] == want["tools"]
