"""tool_choice through the live daemon into each provider's wire format, and into the cache key."""

from __future__ import annotations

import json

import grpc
import pytest
from fake_upstream import FakeUpstream, Json

from policyd.v1 import policyd_pb2 as pb

WEATHER = pb.Tool(
    name="weather",
    description="get weather",
    parameters_json_schema=json.dumps({"type": "object", "properties": {"city": {"type": "string"}}}),
)
CLOCK = pb.Tool(name="clock", description="the time")


def config(url: str) -> str:
    return f"""
providers:
  oai: {{kind: openai-compatible, base_url: "{url}/v1", api_key_env: TEST_TC_KEY}}
  claude: {{kind: anthropic, base_url: "{url}", api_key_env: TEST_TC_KEY}}
  google: {{kind: gemini, base_url: "{url}", api_key_env: TEST_TC_KEY}}
models:
  gpt-oss-120b: {{provider: oai}}
  claude-sonnet-4: {{provider: claude}}
  gemini-2.5-flash:
    provider: google
    upstream: gemini-2.5-flash
    input_usd_per_mtok: 0.30
    output_usd_per_mtok: 2.50
    context_window: 1048576
    license: proprietary
policies:
  default:
    rules:
      - name: openai
        match: {{tasks: [openai]}}
        plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}
      - name: anthropic
        match: {{tasks: [anthropic]}}
        plan: {{strategy: single, params: {{model: claude-sonnet-4}}}}
      - name: gemini
        plan: {{strategy: single, params: {{model: gemini-2.5-flash}}}}
"""


OPENAI_REPLY = {
    "id": "c",
    "object": "chat.completion",
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}
ANTHROPIC_REPLY = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
GEMINI_REPLY = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "index": 0, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1},
}
REPLIES = {"openai": OPENAI_REPLY, "anthropic": ANTHROPIC_REPLY, "gemini": GEMINI_REPLY}


def request(task: str, choice: pb.ToolChoice | None, text: str = "weather in Oslo?") -> pb.CompleteRequest:
    msg = pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], tools=[WEATHER, CLOCK], task=task)
    if choice is not None:
        msg.params.tool_choice.CopyFrom(choice)
    return msg


FUNCTION = pb.ToolChoice(mode=pb.ToolChoice.MODE_FUNCTION, function_name="weather")
REQUIRED = pb.ToolChoice(mode=pb.ToolChoice.MODE_REQUIRED)
NONE = pb.ToolChoice(mode=pb.ToolChoice.MODE_NONE)
AUTO = pb.ToolChoice(mode=pb.ToolChoice.MODE_AUTO)

EXPECTED = {
    # (provider task, choice): (body key, wire value)
    ("openai", "function"): ("tool_choice", {"type": "function", "function": {"name": "weather"}}),
    ("openai", "required"): ("tool_choice", "required"),
    ("openai", "none"): ("tool_choice", "none"),
    ("openai", "auto"): ("tool_choice", "auto"),
    ("anthropic", "function"): ("tool_choice", {"type": "tool", "name": "weather"}),
    ("anthropic", "required"): ("tool_choice", {"type": "any"}),
    ("anthropic", "none"): ("tool_choice", {"type": "none"}),
    ("anthropic", "auto"): ("tool_choice", {"type": "auto"}),
    ("gemini", "function"): (
        "toolConfig",
        {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}},
    ),
    ("gemini", "required"): ("toolConfig", {"functionCallingConfig": {"mode": "ANY"}}),
    ("gemini", "none"): ("toolConfig", {"functionCallingConfig": {"mode": "NONE"}}),
    ("gemini", "auto"): ("toolConfig", {"functionCallingConfig": {"mode": "AUTO"}}),
}
CHOICES = {"function": FUNCTION, "required": REQUIRED, "none": NONE, "auto": AUTO}


@pytest.mark.parametrize(("task", "choice"), sorted(EXPECTED))
async def test_tool_choice_reaches_each_wire_format(live, upstream: FakeUpstream, monkeypatch, task, choice):
    monkeypatch.setenv("TEST_TC_KEY", "sk-test-tool-choice-1")
    _, _, stub = await live(config(upstream.url))
    upstream.queue(Json(REPLIES[task]))
    await stub.Complete(request(task, CHOICES[choice]), timeout=10)

    [seen] = upstream.seen
    key, value = EXPECTED[(task, choice)]
    assert seen.body[key] == value


@pytest.mark.parametrize("task", ["openai", "anthropic", "gemini"])
async def test_without_tool_choice_the_upstream_default_applies(live, upstream, monkeypatch, task):
    monkeypatch.setenv("TEST_TC_KEY", "sk-test-tool-choice-1")
    _, _, stub = await live(config(upstream.url))
    upstream.queue(Json(REPLIES[task]))
    await stub.Complete(request(task, None), timeout=10)
    [seen] = upstream.seen
    assert "tool_choice" not in seen.body and "toolConfig" not in seen.body


async def test_tool_choice_is_part_of_the_cache_key(live, upstream, monkeypatch):
    monkeypatch.setenv("TEST_TC_KEY", "sk-test-tool-choice-1")
    _, _, stub = await live(config(upstream.url))
    upstream.queue(Json(OPENAI_REPLY), Json(OPENAI_REPLY))
    first = await stub.Complete(request("openai", REQUIRED, "same prompt"), timeout=10)
    again = await stub.Complete(request("openai", REQUIRED, "same prompt"), timeout=10)
    other = await stub.Complete(request("openai", FUNCTION, "same prompt"), timeout=10)

    assert [first.attempts[0].cached, again.attempts[0].cached, other.attempts[0].cached] == [False, True, False]
    assert [s.body["tool_choice"] for s in upstream.seen] == [
        "required",
        {"type": "function", "function": {"name": "weather"}},
    ]


@pytest.mark.parametrize(
    ("msg", "field", "problem"),
    [
        (
            pb.CompleteRequest(
                messages=[pb.Message(role=pb.ROLE_USER, content="hi")],
                params=pb.GenerationParams(tool_choice=REQUIRED),
            ),
            "params.tool_choice",
            "'required' needs tools, and the request has none",
        ),
        (
            request("openai", pb.ToolChoice(mode=pb.ToolChoice.MODE_FUNCTION, function_name="stocks")),
            "params.tool_choice.function_name",
            "'stocks' is not one of the tools (weather, clock)",
        ),
        (
            request("openai", pb.ToolChoice(mode=pb.ToolChoice.MODE_FUNCTION)),
            "params.tool_choice.function_name",
            "is required for MODE_FUNCTION",
        ),
    ],
    ids=["required-without-tools", "unknown-function", "function-without-name"],
)
async def test_a_tool_choice_that_cannot_be_honoured_is_invalid_argument(
    live, upstream, monkeypatch, msg, field, problem
):
    monkeypatch.setenv("TEST_TC_KEY", "sk-test-tool-choice-1")
    _, _, stub = await live(config(upstream.url))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Complete(msg, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == f"{field}: {problem}"
    assert upstream.seen == []
