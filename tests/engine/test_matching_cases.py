"""Runs the routing cases in tests/cases/matching/*.yaml: request + policy → expected plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from policyd.config import load_text
from policyd.engine.plan_match import match_request
from policyd.errors import PolicydError
from policyd.types import Constraints, Message, Request, Role, Stakes

CASES_DIR = Path(__file__).parent.parent / "cases" / "matching"


def _cases() -> list[Any]:
    out = []
    for file in sorted(CASES_DIR.glob("*.yaml")):
        doc = yaml.safe_load(file.read_text())
        for case in doc["cases"]:
            out.append(pytest.param(doc["policy"], case, id=f"{file.stem}: {case['name']}"))
    return out


def _request(spec: dict[str, Any]) -> Request:
    c = spec.get("constraints", {})
    return Request(
        request_id="case",
        messages=(Message(role=Role.USER, content="hello"),),
        task=spec.get("task", ""),
        stakes=Stakes(spec.get("stakes", "normal")),
        labels=spec.get("labels", {}),
        tenant=spec.get("tenant", "default"),
        policy=spec.get("policy", ""),
        constraints=Constraints(
            allowed_licenses=frozenset(c.get("allowed_licenses", [])),
            local_only=c.get("local_only", False),
        ),
    )


@pytest.mark.parametrize(("policy", "case"), _cases())
def test_routing_case(registered, policy, case):
    config = load_text(policy, registered, "case.yaml")
    request = _request(case["request"])
    if "error" in case:
        with pytest.raises(PolicydError) as info:
            match_request(config, request)
        assert case["error"] in str(info.value)
        return
    match = match_request(config, request)
    expect = case["expect"]
    assert match.rule.name == expect["rule"]
    if "policy" in expect:
        assert match.policy.name == expect["policy"]
    if "strategy" in expect:
        assert match.plan.strategy == expect["strategy"]
    if "models" in expect:
        assert list(match.plan.models) == expect["models"]
    if "reason_contains" in expect:
        assert expect["reason_contains"] in " ".join([match.reason, *match.skipped])
