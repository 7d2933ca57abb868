"""The gemini provider against a fake Gemini API: generateContent, streamGenerateContent?alt=sse, errors."""

from __future__ import annotations

import pytest
from fake_upstream import FakeUpstream, Json, Sse
from policyd_plugins.gemini.provider import GeminiProvider, GeminiSettings

from policyd.errors import UpstreamError
from policyd.types import Effort, GenerationParams, Message, ModelCall, ModelSpec, ResponseFormat, Role, Tool, ToolCall

KEY = "AIza-test-SECRET-777"
FLASH = ModelSpec("gemini-2.5-flash", "google", "gemini-2.5-flash", 0.3, 2.5, 1_048_576, "proprietary", thinking=True)


def provider(upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch, **kw: object) -> GeminiProvider:
    monkeypatch.setenv("TEST_GEMINI_KEY", KEY)
    settings = GeminiSettings(base_url=upstream.url, api_key_env="TEST_GEMINI_KEY", **kw)  # type: ignore[arg-type]
    return GeminiProvider("google", settings)


def answer(parts: list[dict[str, object]], finish: str | None = "STOP", **usage: int) -> dict[str, object]:
    cand: dict[str, object] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    out: dict[str, object] = {"candidates": [cand], "modelVersion": "gemini-2.5-flash"}
    if usage:
        out["usageMetadata"] = usage
    return out


async def test_generate_content_request_shape_with_the_key_in_a_header_never_the_url(upstream, monkeypatch):
    upstream.queue(
        Json(answer([{"text": "Sunny."}], promptTokenCount=30, candidatesTokenCount=4, thoughtsTokenCount=100))
    )
    p = provider(upstream, monkeypatch)
    call = ModelCall(
        model=FLASH,
        messages=(
            Message(Role.SYSTEM, "be brief"),
            Message(Role.USER, "weather?"),
            Message(Role.ASSISTANT, "", tool_calls=(ToolCall("c1", "weather", '{"city":"Oslo"}'),)),
            Message(Role.TOOL, '{"temp": 3}', tool_call_id="c1"),
        ),
        tools=(
            Tool(
                "weather",
                "get weather",
                {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": False},
            ),
        ),
        params=GenerationParams(
            max_output_tokens=200,
            temperature=0.1,
            top_p=0.8,
            stop=("END",),
            response_format=ResponseFormat(
                "json_schema",
                {
                    "$schema": "x",
                    "type": "object",
                    "properties": {"a": {"type": ["string", "null"]}},
                    "required": ["a"],
                },
            ),
        ),
        effort=Effort.LOW,
    )
    resp = await p.complete(call)
    await p.aclose()
    [seen] = upstream.seen
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1beta/models/gemini-2.5-flash:generateContent", {})
    assert KEY not in seen.raw_url and "key" not in seen.query
    assert seen.headers["x-goog-api-key"] == KEY
    assert seen.body == {
        "contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Oslo"}, "id": "c1"}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"temp": 3}, "id": "c1"}}]},
        ],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "weather",
                        "description": "get weather",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                    }
                ]
            }
        ],
        "generationConfig": {
            "maxOutputTokens": 200,
            "temperature": 0.1,
            "topP": 0.8,
            "stopSequences": ["END"],
            "responseMimeType": "application/json",
            "responseSchema": {
                "type": "object",
                "properties": {"a": {"type": "string", "nullable": True}},
                "required": ["a"],
            },
            "thinkingConfig": {"thinkingBudget": 1024},
        },
    }
    assert resp.message.content == "Sunny."
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.reasoning_tokens) == (30, 104, 100)
    assert resp.response_model == "gemini-2.5-flash"


@pytest.mark.parametrize(("effort", "budget"), [(Effort.OFF, 0), (Effort.MEDIUM, 8192), (Effort.HIGH, 30000)])
async def test_effort_maps_to_thinking_budget(upstream, monkeypatch, effort, budget):
    upstream.queue(Json(answer([{"text": "ok"}], promptTokenCount=1, candidatesTokenCount=1)))
    p = provider(upstream, monkeypatch, thinking_budgets={"high": 30000})
    await p.complete(ModelCall(model=FLASH, messages=(Message(Role.USER, "x"),), effort=effort))
    await p.aclose()
    assert upstream.seen[0].body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": budget}


async def test_stream_uses_alt_sse_skips_thoughts_and_reads_the_last_usage(upstream, monkeypatch):
    upstream.queue(
        Sse(
            [
                answer([{"text": "pondering", "thought": True}], None),
                answer([{"text": "Hel"}], None, promptTokenCount=7, candidatesTokenCount=1),
                answer([{"text": "lo"}], "STOP", promptTokenCount=7, candidatesTokenCount=2, thoughtsTokenCount=5),
            ]
        )
    )
    p = provider(upstream, monkeypatch)
    deltas: list[str] = []
    resp = await p.complete(ModelCall(model=FLASH, messages=(Message(Role.USER, "x"),)), deltas.append)
    await p.aclose()
    seen = upstream.seen[0]
    assert seen.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert seen.query == {"alt": "sse"}
    assert deltas == ["Hel", "lo"]
    assert resp.message.content == "Hello"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.reasoning_tokens) == (7, 7, 5)


async def test_function_call_answer_and_logprobs(upstream, monkeypatch):
    body = answer([{"functionCall": {"name": "get", "args": {"q": "x"}}}], promptTokenCount=3, candidatesTokenCount=2)
    body["candidates"][0]["logprobsResult"] = {"chosenCandidates": [{"token": "a", "logProbability": -0.25}]}  # type: ignore[index]
    upstream.queue(Json(body))
    p = provider(upstream, monkeypatch, top_logprobs=2)
    resp = await p.complete(ModelCall(model=FLASH, messages=(Message(Role.USER, "x"),), logprobs=True))
    await p.aclose()
    gen = upstream.seen[0].body["generationConfig"]
    assert (gen["responseLogprobs"], gen["logprobs"]) == (True, 2)
    assert resp.message.tool_calls == (ToolCall("call_0", "get", '{"q": "x"}'),)
    assert resp.finish_reason == "tool_calls" and resp.logprobs == (-0.25,)


async def test_blocked_prompt_and_safety_finish_are_not_retryable(upstream, monkeypatch):
    upstream.queue(Json({"promptFeedback": {"blockReason": "SAFETY"}}), Json(answer([], "SAFETY")))
    p = provider(upstream, monkeypatch)
    for expected in ("prompt blocked (SAFETY)", "finishReason SAFETY"):
        with pytest.raises(UpstreamError, match=expected.replace("(", r"\(").replace(")", r"\)")) as info:
            await p.complete(ModelCall(model=FLASH, messages=(Message(Role.USER, "x"),)))
        assert not info.value.retryable
    await p.aclose()


async def test_rate_limit_error_body_is_quoted_and_retryable(upstream, monkeypatch):
    err = {"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}
    upstream.queue(Json(err, 429, headers={"Retry-After": "7"}))
    p = provider(upstream, monkeypatch)
    with pytest.raises(UpstreamError, match=r"HTTP 429 \(retry after 7 s\): Resource has been exhausted") as info:
        await p.complete(ModelCall(model=FLASH, messages=(Message(Role.USER, "x"),)))
    await p.aclose()
    assert (info.value.retryable, info.value.retry_after_s) == (True, 7.0)


async def test_missing_usage_metadata_is_estimated(upstream, monkeypatch):
    upstream.queue(Json(answer([{"text": "12345678"}])))
    p = provider(upstream, monkeypatch)
    resp = await p.complete(ModelCall(model=FLASH, messages=(Message(Role.USER, "x"),)))
    await p.aclose()
    assert resp.usage.estimated and resp.usage.output_tokens == 2


def test_unquoted_yaml_off_budget_is_read_as_the_off_level(make_config, monkeypatch):
    monkeypatch.setenv("TEST_GEMINI_KEY", KEY)
    config = make_config(
        """
        providers:
          google: {kind: gemini, api_key_env: TEST_GEMINI_KEY, thinking_budgets: {off: 128, high: -1}}
        policies:
          default: {rules: [{name: r, plan: {strategy: single, params: {model: gpt-oss-120b}}}]}
        """
    )
    budgets = config.providers["google"].settings.thinking_budgets  # type: ignore[attr-defined]
    assert budgets == {"off": 128, "low": 1024, "medium": 8192, "high": -1}
