"""The official ``openai`` Python SDK, sync and async, against a live daemon's HTTP front door."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from policyd.types import Role, ToolChoice
from policyd.v1 import policyd_pb2 as pb

SCRIPTED = """
version: oa-s
policies:
  default:
    rules:
      - name: coding
        match: {tasks: [coding]}
        plan: {strategy: fallback, params: {models: [qwen3-coder-480b-a35b, claude-sonnet-4]}}
      - name: rest
        plan: {strategy: single, params: {model: gpt-oss-120b}}
"""

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_sync_client_gets_a_standard_completion_with_policyd_detail(front):
    f = await front()

    def call() -> openai.APIResponse:
        return f.client().chat.completions.with_raw_response.create(model="default", messages=user("write a poem"))

    raw = await asyncio.to_thread(call)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-oss-120b"
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and "simulated" in (choice.message.content or "")
    assert choice.finish_reason == "stop"
    detail = completion.model_extra["policyd"]
    assert detail["status"] == "accepted-unvalidated"
    assert detail["explanation"]["rule"] == "rest"
    attempt = detail["attempts"][0]
    assert completion.usage.prompt_tokens == attempt["input_tokens"] > 0
    assert completion.usage.completion_tokens == attempt["output_tokens"] > 0
    assert raw.headers["x-policyd-request-id"] == detail["request_id"] == completion.id.removeprefix("chatcmpl-")
    assert float(raw.headers["x-policyd-cost-usd"]) == pytest.approx(detail["cost_usd"], rel=1e-6)
    assert raw.headers["x-policyd-status"] == "accepted-unvalidated"
    assert (raw.headers["x-policyd-policy"], raw.headers["x-policyd-strategy"]) == ("default", "single")
    assert raw.headers["x-policyd-attempts"] == "1"


async def test_usage_is_the_sum_over_every_attempt(front):
    script = {"qwen3-coder-480b-a35b": {"error": "overloaded"}, "claude-sonnet-4": "def f(): pass"}
    f = await front(SCRIPTED, script)
    completion = await f.aclient().chat.completions.create(
        model="policyd/default", messages=user("code"), extra_headers={"x-policyd-task": "coding"}
    )
    attempts = completion.model_extra["policyd"]["attempts"]
    assert [a["model"] for a in attempts] == ["qwen3-coder-480b-a35b", "claude-sonnet-4"]
    assert "overloaded" in attempts[0]["error"]
    assert completion.model == "claude-sonnet-4"
    assert completion.choices[0].message.content == "def f(): pass"
    assert completion.usage.prompt_tokens == sum(a["input_tokens"] for a in attempts)
    assert completion.usage.completion_tokens == sum(a["output_tokens"] for a in attempts)
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


async def test_async_streaming_relays_deltas_then_usage(front):
    f = await front()
    stream = await f.aclient().chat.completions.create(
        model="default", messages=user("tell me more"), stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1, "the answer arrives in pieces"
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
    assert finishing[0].model_extra["policyd"]["status"] == "accepted-unvalidated"
    assert "simulated" in text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


async def test_sync_streaming_without_usage_sends_no_usage_chunk(front):
    f = await front()

    def call() -> list[openai.types.chat.ChatCompletionChunk]:
        return list(f.client().chat.completions.create(model="default", messages=user("hi"), stream=True))

    chunks = await asyncio.to_thread(call)
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_tool_calls_round_trip(front):
    script = {"gpt-oss-120b": [{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}, "Sunny."]}
    f = await front(SCRIPTED, script)
    client = f.aclient()
    first = await client.chat.completions.create(
        model="default", messages=user("weather in Oslo?"), tools=[WEATHER_TOOL], tool_choice="auto"
    )
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert (call.type, call.function.name, json.loads(call.function.arguments)) == (
        "function",
        "get_weather",
        {"city": "Oslo"},
    )
    second = await client.chat.completions.create(
        model="default",
        tools=[WEATHER_TOOL],
        messages=[
            *user("weather in Oslo?"),
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "12 C, clear"},
        ],
    )
    assert second.choices[0].message.content == "Sunny."
    sent = f.daemon.engine.runtime.providers["scripted"].calls[-1]  # type: ignore[attr-defined]
    assert [m.role for m in sent.messages] == [Role.USER, Role.ASSISTANT, Role.TOOL]
    assert sent.messages[1].tool_calls[0].name == "get_weather"
    assert sent.messages[2].tool_call_id == call.id
    assert [t.name for t in sent.tools] == ["get_weather"]
    assert sent.tools[0].parameters["required"] == ["city"]


async def test_streamed_tool_calls_arrive_as_indexed_deltas(front):
    script = {"gpt-oss-120b": [{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]}]}
    f = await front(SCRIPTED, script)
    stream = await f.aclient().chat.completions.create(
        model="default", messages=user("weather?"), tools=[WEATHER_TOOL], stream=True
    )
    chunks = [c async for c in stream]
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert [(tc.index, tc.function.name) for tc in calls] == [(0, "get_weather")]
    assert json.loads(calls[0].function.arguments or "") == {"city": "Rome"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", ToolChoice(mode="none")),
        ("required", ToolChoice(mode="required")),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            ToolChoice(mode="function", function="get_weather"),
        ),
    ],
)
async def test_tool_choice_reaches_the_provider(front, choice, expected):
    f = await front(SCRIPTED, {"gpt-oss-120b": "plain"})
    await f.aclient().chat.completions.create(
        model="default", messages=user("hi"), tools=[WEATHER_TOOL], tool_choice=choice
    )
    call = f.daemon.engine.runtime.providers["scripted"].calls[-1]  # type: ignore[attr-defined]
    assert call.params.tool_choice == expected
    assert [t.name for t in call.tools] == ["get_weather"]


async def test_response_format_json_schema_and_generation_params_reach_the_provider(front):
    f = await front(SCRIPTED, {"gpt-oss-120b": '{"answer": 42}'})
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    completion = await f.aclient().chat.completions.create(
        model="default",
        messages=[
            {"role": "developer", "content": "Answer in JSON."},
            {"role": "user", "content": [{"type": "text", "text": "six "}, {"type": "text", "text": "times seven"}]},
        ],
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
        max_completion_tokens=64,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        seed=7,
        n=1,
        reasoning_effort="high",
        user="u-1",
        metadata={"team": "search"},
    )
    assert json.loads(completion.choices[0].message.content or "") == {"answer": 42}
    call = f.daemon.engine.runtime.providers["scripted"].calls[-1]  # type: ignore[attr-defined]
    expected = [(Role.SYSTEM, "Answer in JSON."), (Role.USER, "six times seven")]
    assert [(m.role, m.content) for m in call.messages] == expected
    p = call.params
    assert (p.response_format.kind, p.response_format.schema_name) == ("json_schema", "answer")
    assert p.response_format.json_schema == schema
    assert (p.max_output_tokens, p.temperature, p.top_p, p.stop, p.seed) == (64, 0.2, 0.9, ("END",), 7)
    assert call.labels == {"team": "search", "reasoning_effort": "high", "user": "u-1"}


async def test_json_object_response_format_and_legacy_max_tokens(front):
    f = await front(SCRIPTED, {"gpt-oss-120b": "{}"})
    await f.aclient().chat.completions.create(
        model="default", messages=user("json please"), response_format={"type": "json_object"}, max_tokens=10
    )
    call = f.daemon.engine.runtime.providers["scripted"].calls[-1]  # type: ignore[attr-defined]
    assert (call.params.response_format.kind, call.params.max_output_tokens) == ("json_object", 10)


async def test_intent_from_headers_and_metadata_picks_the_rule(front):
    f = await front()
    client = f.aclient(default_headers={"x-policyd-task": "coding"})
    by_header = await client.chat.completions.create(model="default", messages=user("sort a list"))
    assert by_header.model_extra["policyd"]["explanation"]["rule"] == "coding"
    by_metadata = await f.aclient().chat.completions.create(
        model="default", messages=user("sort a list"), metadata={"policyd_task": "coding"}
    )
    assert by_metadata.model_extra["policyd"]["explanation"]["rule"] == "coding"


async def test_model_names_a_policy_or_a_catalog_model_for_a_direct_call(front):
    f = await front()
    client = f.aclient()
    premium = await client.chat.completions.create(model="policyd/premium", messages=user("hi"))
    assert premium.model == "claude-sonnet-4"
    assert premium.model_extra["policyd"]["explanation"]["policy"] == "premium"
    direct = await client.chat.completions.create(
        model="claude-sonnet-4", messages=user("hi"), extra_headers={"x-policyd-task": "coding"}
    )
    assert [a["model"] for a in direct.model_extra["policyd"]["attempts"]] == ["claude-sonnet-4"]
    with pytest.raises(openai.ConflictError) as refused:  # no rule of the default policy may use kimi-k2
        await client.chat.completions.create(model="kimi-k2", messages=user("hi"))
    assert refused.value.code == "failed_precondition"
    assert "constraints.allowed_models" in refused.value.message


async def test_models_list_and_retrieve(front):
    f = await front()
    client = f.aclient()
    ids = [m.id async for m in client.models.list()]
    assert ids[:2] == ["policyd/default", "policyd/premium"]
    assert "claude-sonnet-4" in ids
    model = await client.models.retrieve("claude-sonnet-4")
    assert model.owned_by == "simulated"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("no-such-model")


async def test_second_identical_request_is_a_cache_hit(front):
    f = await front()
    client = f.aclient()
    await client.chat.completions.create(model="default", messages=user("cache me"))
    again = await client.chat.completions.create(model="default", messages=user("cache me"))
    assert again.model_extra["policyd"]["attempts"][0]["cached"] is True
    assert again.usage.prompt_tokens_details.cached_tokens == again.usage.prompt_tokens > 0


async def test_http_requests_land_in_the_same_ledger_as_grpc(front):
    import grpc.aio

    from policyd.v1 import policyd_pb2_grpc

    f = await front()
    completion = await f.aclient().chat.completions.create(model="default", messages=user("count me"))
    request_id = completion.model_extra["policyd"]["request_id"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{f.grpc.port}") as channel:
        stub = policyd_pb2_grpc.PolicyServiceStub(channel)
        for _ in range(50):  # the ledger writes off the response path
            stats = await stub.GetStats(pb.GetStatsRequest())
            if sum(row.requests for row in stats.rows):
                break
            await asyncio.sleep(0.05)
        assert sum(row.requests for row in stats.rows) == 1
        reported = await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id=request_id, success=False))
    assert reported.changed is True


async def test_http_request_continues_the_callers_trace(front):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from policyd.telemetry.setup import build_telemetry

    spans = InMemorySpanExporter()
    f = await front(telemetry=build_telemetry({}, span_exporters=[spans]))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    raw = await f.aclient().chat.completions.with_raw_response.create(
        model="default", messages=user("traced"), extra_headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    )
    assert raw.headers["x-policyd-trace-id"] == trace_id
    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind is SpanKind.SERVER and s.name == "POST /v1/chat/completions"]
    assert len(server) == 1
    assert {format(s.context.trace_id, "032x") for s in finished} == {trace_id}
    assert len(finished) > 1, "the engine's decision and model-call spans sit under the HTTP span"
