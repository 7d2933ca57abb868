"""OpenAI body and headers → domain Request: what each field becomes, and errors naming the field."""

from __future__ import annotations

import time
from typing import Any

import pytest

from policyd.config.security import LimitsConfig
from policyd.errors import InvalidArgument
from policyd.server.openai.convert import Target, metadata_of, request_from_body
from policyd.server.openai.intent import read_intent
from policyd.types import CacheMode, Request, Role, Stakes, ToolChoice

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def convert(body: dict[str, Any], headers: dict[str, str] | None = None, **target: str) -> Request:
    intent = read_intent(headers or {}, metadata_of(body))
    return request_from_body(
        {"messages": [{"role": "user", "content": "hi"}], **body},
        intent,
        Target(policy=target.get("policy", "default"), model=target.get("model", "")),
        limits=LimitsConfig(),
        request_id="r-1",
        tenant="t",
        deadline=time.monotonic() + 5,
    )


def test_headers_win_over_metadata_and_other_metadata_keys_are_labels():
    headers = {
        "x-policyd-task": "coding",
        "x-policyd-stakes": "HIGH",
        "x-policyd-labels": "team=search, tier=gold",
        "x-policyd-cache": "bypass",
        "x-policyd-max-cost-usd": "0.25",
    }
    metadata = {"policyd_task": "creative", "app": "docs", "policyd_stakes": "low"}
    req = convert({"metadata": metadata}, headers)
    assert (req.task, req.stakes, req.cache_mode) == ("coding", Stakes.HIGH, CacheMode.BYPASS)
    assert req.labels == {"app": "docs", "team": "search", "tier": "gold"}
    assert req.constraints.max_cost_usd == 0.25


def test_sdk_timeout_sets_the_deadline_unless_policyd_names_one():
    assert read_intent({"x-stainless-timeout": "30"}, {}).deadline_s == 30
    assert read_intent({"x-stainless-timeout": "30", "x-policyd-deadline-ms": "500"}, {}).deadline_s == 0.5
    assert read_intent({"x-stainless-timeout": "soon"}, {}).deadline_s is None


def test_direct_model_call_narrows_the_allowed_models():
    req = convert({}, model="claude-sonnet-4", policy="premium")
    assert req.constraints.allowed_models == frozenset({"claude-sonnet-4"})
    assert req.policy == "premium"


def test_tool_choice_is_carried_as_the_domain_tool_choice_and_a_label():
    other = {"type": "function", "function": {"name": "other"}}
    named = convert({"tools": [TOOL, other], "tool_choice": {"type": "function", "function": {"name": "other"}}})
    assert [t.name for t in named.tools] == ["lookup", "other"]
    assert named.params.tool_choice == ToolChoice(mode="function", function="other")
    assert named.labels["tool_choice"] == "function"
    required = convert({"tools": [TOOL], "tool_choice": "required"})
    assert required.params.tool_choice == ToolChoice(mode="required") and required.labels["tool_choice"] == "required"
    none = convert({"tools": [TOOL], "tool_choice": "none"})
    assert none.params.tool_choice == ToolChoice(mode="none") and [t.name for t in none.tools] == ["lookup"]
    assert convert({"tools": [TOOL]}).params.tool_choice is None


def test_assistant_tool_calls_and_tool_results_keep_their_ids():
    req = convert(
        {
            "messages": [
                {"role": "user", "content": "look it up"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "found"}]},
            ]
        }
    )
    assert [m.role for m in req.messages] == [Role.USER, Role.ASSISTANT, Role.TOOL]
    assert req.messages[1].tool_calls[0].id == "c1"
    assert (req.messages[2].tool_call_id, req.messages[2].content) == ("c1", "found")


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        ({"messages": []}, {}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, {}, "messages[0].role"),
        ({"messages": [{"role": "tool", "content": "x"}]}, {}, "messages[0].tool_call_id"),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}]},
            {},
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({"tools": [TOOL, TOOL]}, {}, "tools[1].function.name"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            {},
            "tool_choice.function.name",
        ),
        ({"response_format": {"type": "yaml"}}, {}, "response_format.type"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            {},
            "response_format.json_schema.schema",
        ),
        ({"stop": ["a", "b", "c", "d", "e"]}, {}, "stop"),
        ({"top_p": 0}, {}, "top_p"),
        ({"seed": 1.5}, {}, "seed"),
        ({"max_tokens": 0}, {}, "max_tokens"),
        ({"reasoning_effort": "extreme"}, {}, "reasoning_effort"),
        ({"metadata": {"n": 1}}, {}, "metadata.n"),
        ({}, {"x-policyd-labels": "novalue"}, "x-policyd-labels"),
        ({}, {"x-policyd-max-cost-usd": "-1"}, "x-policyd-max-cost-usd"),
        ({"metadata": {"policyd_cache": "sometimes"}}, {}, "metadata.policyd_cache"),
    ],
)
def test_bad_input_names_the_field(body: dict[str, Any], headers: dict[str, str], field: str):
    with pytest.raises(InvalidArgument) as bad:
        convert(body, headers)
    assert bad.value.field == field
