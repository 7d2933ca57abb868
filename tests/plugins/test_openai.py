"""The openai-compatible provider against a fake Chat Completions server speaking the real wire format."""

from __future__ import annotations

import pytest
from fake_upstream import FakeUpstream, Json, Sse
from policyd_plugins.openai.provider import OpenAIProvider, OpenAISettings

from policyd.errors import ConfigError, UpstreamError
from policyd.types import (
    Effort,
    GenerationParams,
    Message,
    ModelCall,
    ModelSpec,
    ResponseFormat,
    Role,
    Tool,
    ToolCall,
)

KEY = "sk-test-SECRET-0123456789"


def model(**kw: object) -> ModelSpec:
    base: dict[str, object] = dict(
        id="qwen3",
        provider="local",
        upstream="Qwen/Qwen3-32B",
        input_usd_per_mtok=1.0,
        output_usd_per_mtok=2.0,
        context_window=32_768,
        license="apache-2.0",
    )
    base.update(kw)
    return ModelSpec(**base)  # type: ignore[arg-type]


def provider(upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch, **kw: object) -> OpenAIProvider:
    monkeypatch.setenv("TEST_OPENAI_KEY", KEY)
    settings = OpenAISettings(base_url=f"{upstream.url}/v1", api_key_env="TEST_OPENAI_KEY", **kw)  # type: ignore[arg-type]
    return OpenAIProvider("local", settings)


def completion(content: str | None = "Hello!", **extra: object) -> dict[str, object]:
    message: dict[str, object] = {"role": "assistant", "content": content}
    message.update(extra.pop("message_extra", {}))  # type: ignore[arg-type]
    out: dict[str, object] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "Qwen/Qwen3-32B",
        "choices": [{"index": 0, "message": message, "finish_reason": extra.pop("finish_reason", "stop")}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42},
    }
    out.update(extra)
    return out


def chunk(delta: dict[str, object], finish: str | None = None, **extra: object) -> dict[str, object]:
    out: dict[str, object] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "Qwen/Qwen3-32B",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    out.update(extra)
    return out


async def test_request_carries_messages_tools_params_and_bearer_key_in_a_header(upstream, monkeypatch):
    upstream.queue(Json(completion()))
    p = provider(upstream, monkeypatch, max_tokens_field="max_completion_tokens", headers={"HTTP-Referer": "x"})
    call = ModelCall(
        model=model(),
        messages=(
            Message(Role.SYSTEM, "be brief"),
            Message(Role.USER, "weather?"),
            Message(Role.ASSISTANT, "", tool_calls=(ToolCall("c1", "weather", '{"city":"Oslo"}'),)),
            Message(Role.TOOL, '{"temp": 3}', tool_call_id="c1"),
        ),
        tools=(Tool("weather", "get weather", {"type": "object", "properties": {"city": {"type": "string"}}}),),
        params=GenerationParams(
            max_output_tokens=100,
            temperature=0.2,
            top_p=0.9,
            stop=("END",),
            seed=7,
            response_format=ResponseFormat("json_schema", {"type": "object"}, "answer"),
        ),
        timeout_s=5,
    )
    resp = await p.complete(call)
    await p.aclose()
    [seen] = upstream.seen
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/chat/completions", {})
    assert KEY not in seen.raw_url
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["http-referer"] == "x"
    assert seen.body == {
        "model": "Qwen/Qwen3-32B",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 3}'},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "get weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        "max_completion_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}},
    }
    assert resp.message.content == "Hello!"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.estimated) == (12, 30, False)
    assert resp.finish_reason == "stop" and resp.response_model == "Qwen/Qwen3-32B"
    assert resp.latency_ms > 0


async def test_tool_calls_reasoning_tokens_and_logprobs_are_parsed(upstream, monkeypatch):
    body = completion(
        None,
        finish_reason="tool_calls",
        message_extra={
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]
        },
        usage={"prompt_tokens": 5, "completion_tokens": 50, "completion_tokens_details": {"reasoning_tokens": 40}},
    )
    body["choices"][0]["logprobs"] = {"content": [{"token": "a", "logprob": -0.5, "top_logprobs": []}]}  # type: ignore[index]
    upstream.queue(Json(body))
    p = provider(upstream, monkeypatch, top_logprobs=3)
    resp = await p.complete(ModelCall(model=model(thinking=True), messages=(Message(Role.USER, "x"),), logprobs=True))
    await p.aclose()
    assert upstream.seen[0].body["logprobs"] is True and upstream.seen[0].body["top_logprobs"] == 3
    assert resp.message.tool_calls == (ToolCall("call_9", "f", '{"a":1}'),)
    assert resp.finish_reason == "tool_calls"
    assert (resp.usage.output_tokens, resp.usage.reasoning_tokens) == (50, 40), "reasoning is billed as output"
    assert resp.logprobs == (-0.5,)


@pytest.mark.parametrize(
    ("options", "thinking", "effort", "expected"),
    [
        ({"thinking_flag": "enable_thinking"}, True, Effort.OFF, {"chat_template_kwargs": {"enable_thinking": False}}),
        ({"thinking_flag": "enable_thinking"}, True, Effort.HIGH, {"chat_template_kwargs": {"enable_thinking": True}}),
        ({"thinking_flag": "enable_thinking", "thinking_flag_in": "body"}, True, Effort.LOW, {"enable_thinking": True}),
        ({}, True, Effort.MEDIUM, {"reasoning_effort": "medium"}),
        ({}, True, Effort.OFF, {}),
        ({"reasoning_effort_off": "minimal"}, True, Effort.OFF, {"reasoning_effort": "minimal"}),
        ({}, False, Effort.HIGH, {}),
    ],
)
async def test_effort_maps_to_reasoning_effort_or_the_models_thinking_flag(
    upstream, monkeypatch, options, thinking, effort, expected
):
    upstream.queue(Json(completion()))
    p = provider(upstream, monkeypatch)
    await p.complete(
        ModelCall(model=model(thinking=thinking, options=options), messages=(Message(Role.USER, "x"),), effort=effort)
    )
    await p.aclose()
    body = upstream.seen[0].body
    knobs = {k: body[k] for k in ("chat_template_kwargs", "enable_thinking", "reasoning_effort") if k in body}
    assert knobs == expected


async def test_stream_relays_deltas_in_order_and_reads_usage_from_the_last_chunk(upstream, monkeypatch):
    upstream.queue(
        Sse(
            [
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": "Hel"}),
                chunk({"reasoning_content": "thinking..."}),
                chunk({"content": "lo"}),
                chunk({}, "stop"),
                {**chunk({}), "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}},
                "data: [DONE]\n\n",
            ]
        )
    )
    p = provider(upstream, monkeypatch)
    deltas: list[str] = []
    resp = await p.complete(ModelCall(model=model(), messages=(Message(Role.USER, "x"),)), deltas.append)
    await p.aclose()
    body = upstream.seen[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert upstream.seen[0].headers["accept"] == "text/event-stream"
    assert deltas == ["Hel", "lo"]
    assert resp.message.content == "Hello"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.estimated) == (9, 2, False)


async def test_streamed_tool_call_fragments_are_assembled(upstream, monkeypatch):
    tc = [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get", "arguments": ""}}]
    upstream.queue(
        Sse(
            [
                chunk({"role": "assistant", "tool_calls": tc}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q":'}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}),
                chunk({}, "tool_calls"),
                "data: [DONE]\n\n",
            ]
        )
    )
    p = provider(upstream, monkeypatch)
    resp = await p.complete(ModelCall(model=model(), messages=(Message(Role.USER, "x"),)), lambda _: None)
    await p.aclose()
    assert resp.message.tool_calls == (ToolCall("call_1", "get", '{"q":"x"}'),)
    assert resp.finish_reason == "tool_calls"


async def test_missing_usage_is_estimated_and_flagged(upstream, monkeypatch):
    body = completion("four score and seven years ago")
    del body["usage"]
    upstream.queue(Json(body))
    p = provider(upstream, monkeypatch)
    resp = await p.complete(ModelCall(model=model(), messages=(Message(Role.USER, "a question"),)))
    await p.aclose()
    assert resp.usage.estimated
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens == 8


async def test_unauthorized_is_not_retryable_and_the_message_never_echoes_the_key(upstream, monkeypatch):
    upstream.queue(
        Json({"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}, 401)
    )
    p = provider(upstream, monkeypatch)
    with pytest.raises(UpstreamError) as info:
        await p.complete(ModelCall(model=model(), messages=(Message(Role.USER, "x"),)))
    await p.aclose()
    err = info.value
    assert (err.status, err.retryable) == (401, False)
    assert "Incorrect API key provided" in str(err) and KEY not in str(err)
    assert KEY not in repr(p) and "TEST_OPENAI_KEY" in repr(p)


async def test_content_filter_refusal_is_not_retryable(upstream, monkeypatch):
    upstream.queue(Json(completion(None, finish_reason="content_filter")))
    p = provider(upstream, monkeypatch)
    with pytest.raises(UpstreamError, match="content filter") as info:
        await p.complete(ModelCall(model=model(), messages=(Message(Role.USER, "x"),)))
    await p.aclose()
    assert info.value.retryable is False


async def test_error_object_inside_a_stream_is_classified_by_its_code(upstream, monkeypatch):
    upstream.queue(Sse([{"error": {"code": 429, "message": "rate limited upstream"}}]))
    p = provider(upstream, monkeypatch)
    with pytest.raises(UpstreamError, match="rate limited upstream") as info:
        await p.complete(ModelCall(model=model(), messages=(Message(Role.USER, "x"),)), lambda _: None)
    await p.aclose()
    assert (info.value.status, info.value.retryable) == (429, True)


def test_missing_key_variable_fails_the_policy_file_with_its_key_path(make_config, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ConfigError) as info:
        make_config(
            """
            providers:
              hosted: {kind: openai-compatible, base_url: "https://api.example.com/v1", api_key_env: NO_SUCH_KEY_VAR}
            policies:
              default: {rules: [{name: r, plan: {strategy: single, params: {model: gpt-oss-120b}}}]}
            """
        )
    assert "providers.hosted.api_key_env" in str(info.value)
    assert "NO_SUCH_KEY_VAR is not set" in str(info.value)


def test_keys_in_headers_or_urls_are_refused_at_load(make_config):
    for extra, where in [
        ('headers: {Authorization: "Bearer x"}', "providers.p.headers"),
        ('base_url: "https://api.example.com/v1?key=abc"', "providers.p.base_url"),
    ]:
        base = "" if "base_url" in extra else 'base_url: "https://api.example.com/v1", '
        with pytest.raises(ConfigError) as info:
            make_config(
                f"""
                providers:
                  p: {{kind: openai-compatible, {base}{extra}}}
                policies:
                  default: {{rules: [{{name: r, plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}}}]}}
                """
            )
        assert where in str(info.value)
