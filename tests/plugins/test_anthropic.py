"""The anthropic provider against a fake Messages API speaking the documented request and event shapes."""

from __future__ import annotations

import pytest
from fake_upstream import FakeUpstream, Json, Sse, sse_data
from policyd_plugins.anthropic.provider import AnthropicProvider, AnthropicSettings

from policyd.errors import UpstreamError
from policyd.types import Effort, GenerationParams, Message, ModelCall, ModelSpec, ResponseFormat, Role, Tool, ToolCall

KEY = "sk-ant-test-SECRET-42"
CLAUDE = ModelSpec("claude-sonnet-4", "claude", "claude-sonnet-4-20250514", 3.0, 15.0, 200_000, "proprietary")


def provider(upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch, **kw: object) -> AnthropicProvider:
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", KEY)
    settings = AnthropicSettings(base_url=upstream.url, api_key_env="TEST_ANTHROPIC_KEY", **kw)  # type: ignore[arg-type]
    return AnthropicProvider("claude", settings)


def message(content: list[dict[str, object]], stop_reason: str = "end_turn", **usage: int) -> dict[str, object]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 10, **usage},
    }


async def test_request_has_system_merged_turns_tool_blocks_and_the_version_and_key_headers(upstream, monkeypatch):
    upstream.queue(Json(message([{"type": "text", "text": "Hi!"}])))
    p = provider(upstream, monkeypatch, api_version="2023-06-01")
    call = ModelCall(
        model=CLAUDE,
        messages=(
            Message(Role.SYSTEM, "be brief"),
            Message(Role.USER, "weather in Oslo and Rome?"),
            Message(
                Role.ASSISTANT,
                "Checking.",
                tool_calls=(
                    ToolCall("tu_1", "weather", '{"city":"Oslo"}'),
                    ToolCall("tu_2", "weather", '{"city":"Rome"}'),
                ),
            ),
            Message(Role.TOOL, "3C", tool_call_id="tu_1"),
            Message(Role.TOOL, "20C", tool_call_id="tu_2"),
        ),
        tools=(Tool("weather", "get weather", {"type": "object", "properties": {"city": {"type": "string"}}}),),
        params=GenerationParams(max_output_tokens=300, temperature=0.3, stop=("END",)),
    )
    resp = await p.complete(call)
    await p.aclose()
    [seen] = upstream.seen
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/messages", {})
    assert seen.headers["x-api-key"] == KEY and "authorization" not in seen.headers
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.body == {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 300,
        "system": "be brief",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather in Oslo and Rome?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "tu_2", "name": "weather", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "tu_1", "content": "3C"},
                    {"type": "tool_result", "tool_use_id": "tu_2", "content": "20C"},
                ],
            },
        ],
        "tools": [
            {
                "name": "weather",
                "description": "get weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "temperature": 0.3,
        "stop_sequences": ["END"],
    }
    assert resp.message.content == "Hi!" and resp.finish_reason == "stop"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (20, 10)


async def test_effort_sets_a_thinking_budget_on_top_of_the_answer_allowance_and_drops_temperature(
    upstream, monkeypatch
):
    upstream.queue(
        Json(
            message(
                [
                    {"type": "thinking", "thinking": "Let me think", "signature": "sig"},
                    {"type": "text", "text": "42"},
                    {"type": "tool_use", "id": "tu_9", "name": "calc", "input": {"x": 1}},
                ],
                stop_reason="tool_use",
                output_tokens=900,
                cache_read_input_tokens=5,
            )
        )
    )
    p = provider(upstream, monkeypatch, thinking_budgets={"high": 20000})
    thinker = ModelSpec("claude-opus", "claude", "claude-opus-4-1", 15.0, 75.0, 200_000, "proprietary", thinking=True)
    resp = await p.complete(
        ModelCall(
            model=thinker,
            messages=(Message(Role.USER, "x"),),
            effort=Effort.HIGH,
            params=GenerationParams(max_output_tokens=1000, temperature=0.5),
        )
    )
    await p.aclose()
    body = upstream.seen[0].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 20000}
    assert body["max_tokens"] == 21000
    assert "temperature" not in body
    assert resp.message.content == "42", "thinking is not part of the answer"
    assert resp.message.tool_calls == (ToolCall("tu_9", "calc", '{"x": 1}'),)
    assert resp.finish_reason == "tool_calls"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (25, 900), "thinking is billed inside output"


async def test_json_schema_format_becomes_a_system_instruction(upstream, monkeypatch):
    upstream.queue(Json(message([{"type": "text", "text": "{}"}])))
    p = provider(upstream, monkeypatch)
    fmt = ResponseFormat("json_schema", {"type": "object", "required": ["a"]}, "x")
    await p.complete(
        ModelCall(model=CLAUDE, messages=(Message(Role.USER, "x"),), params=GenerationParams(response_format=fmt))
    )
    await p.aclose()
    assert upstream.seen[0].body["system"].startswith("Answer with one JSON value that conforms to this JSON Schema")
    assert '{"required": ["a"], "type": "object"}' in upstream.seen[0].body["system"]


def stream_events(text_pieces: list[str], stop: bool = True) -> list[object]:
    events: list[object] = [
        sse_data(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-20250514",
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": 25, "output_tokens": 1},
                },
            },
            "message_start",
        ),
        sse_data(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
            "content_block_start",
        ),
        sse_data(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
            "content_block_delta",
        ),
        sse_data({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse_data(
            {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
        sse_data({"type": "ping"}, "ping"),
    ]
    for piece in text_pieces:
        events.append(
            sse_data(
                {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": piece}},
                "content_block_delta",
            )
        )
    events.append(sse_data({"type": "content_block_stop", "index": 1}, "content_block_stop"))
    if stop:
        events.append(
            sse_data(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 15},
                },
                "message_delta",
            )
        )
        events.append(sse_data({"type": "message_stop"}, "message_stop"))
    return events


async def test_stream_follows_the_event_sequence_and_takes_usage_from_message_start_and_delta(upstream, monkeypatch):
    upstream.queue(Sse(stream_events(["Hello", ", world"])))
    p = provider(upstream, monkeypatch)
    deltas: list[str] = []
    resp = await p.complete(ModelCall(model=CLAUDE, messages=(Message(Role.USER, "x"),)), deltas.append)
    await p.aclose()
    assert upstream.seen[0].body["stream"] is True
    assert deltas == ["Hello", ", world"]
    assert resp.message.content == "Hello, world"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.estimated) == (25, 15, False)


async def test_streamed_tool_use_input_is_assembled_from_json_deltas(upstream, monkeypatch):
    events = [
        *stream_events([], stop=False)[:1],
        sse_data(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "tu_1", "name": "get", "input": {}},
            },
            "content_block_start",
        ),
        sse_data(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"q": '},
            },
            "content_block_delta",
        ),
        sse_data(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '"x"}'}},
            "content_block_delta",
        ),
        sse_data({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse_data(
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 7}},
            "message_delta",
        ),
        sse_data({"type": "message_stop"}, "message_stop"),
    ]
    upstream.queue(Sse(events))
    p = provider(upstream, monkeypatch)
    resp = await p.complete(ModelCall(model=CLAUDE, messages=(Message(Role.USER, "x"),)), lambda _: None)
    await p.aclose()
    assert resp.message.tool_calls == (ToolCall("tu_1", "get", '{"q": "x"}'),)
    assert resp.finish_reason == "tool_calls"


async def test_error_event_mid_stream_is_classified_and_a_missing_message_stop_is_malformed(upstream, monkeypatch):
    overloaded = sse_data({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")
    upstream.queue(Sse([*stream_events(["a"], stop=False), overloaded]), Sse(stream_events(["a"], stop=False)))
    p = provider(upstream, monkeypatch)
    with pytest.raises(UpstreamError, match="HTTP 529: Overloaded") as info:
        await p.complete(ModelCall(model=CLAUDE, messages=(Message(Role.USER, "x"),)), lambda _: None)
    assert info.value.retryable
    with pytest.raises(UpstreamError, match="stream ended before message_stop") as info:
        await p.complete(ModelCall(model=CLAUDE, messages=(Message(Role.USER, "x"),)), lambda _: None)
    await p.aclose()
    assert info.value.retryable


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}, False),
        (403, {"type": "error", "error": {"type": "permission_error", "message": "no"}}, False),
        (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, True),
    ],
)
async def test_http_errors_are_classified(upstream, monkeypatch, status, body, retryable):
    upstream.queue(Json(body, status))
    p = provider(upstream, monkeypatch)
    with pytest.raises(UpstreamError) as info:
        await p.complete(ModelCall(model=CLAUDE, messages=(Message(Role.USER, "x"),)))
    await p.aclose()
    assert (info.value.status, info.value.retryable) == (status, retryable)


async def test_refusal_stop_reason_is_not_retryable(upstream, monkeypatch):
    upstream.queue(Json(message([], stop_reason="refusal")))
    p = provider(upstream, monkeypatch)
    with pytest.raises(UpstreamError, match="content filter") as info:
        await p.complete(ModelCall(model=CLAUDE, messages=(Message(Role.USER, "x"),)))
    await p.aclose()
    assert not info.value.retryable


def test_thinking_budgets_are_checked_at_load_with_their_key_path(make_config, monkeypatch):
    from policyd.errors import ConfigError

    monkeypatch.setenv("TEST_ANTHROPIC_KEY", KEY)
    for budgets, problem in [("{low: 100}", "at least 1024 (too small: low)"), ("{extreme: 90000}", "unknown effort")]:
        with pytest.raises(ConfigError) as info:
            make_config(
                f"""
                providers:
                  claude: {{kind: anthropic, api_key_env: TEST_ANTHROPIC_KEY, thinking_budgets: {budgets}}}
                policies:
                  default: {{rules: [{{name: r, plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}}}]}}
                """
            )
        assert "providers.claude.thinking_budgets" in str(info.value) and problem in str(info.value)
        assert KEY not in str(info.value)
