"""A streamed answer's first text reaches the caller's stream before the rest of a burst is handled."""

from __future__ import annotations

import asyncio

import pytest
from fake_upstream import FakeUpstream, Sse, sse_data
from policyd_plugins.openai.provider import OpenAIProvider, OpenAISettings

from policyd.types import Message, ModelCall, ModelSpec, Role

MODEL = ModelSpec(
    id="qwen3",
    provider="local",
    upstream="Qwen/Qwen3-32B",
    input_usd_per_mtok=1.0,
    output_usd_per_mtok=2.0,
    context_window=32_768,
    license="apache-2.0",
)


def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def test_a_burst_relays_its_first_text_before_the_rest_of_the_burst_is_parsed(
    upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
):
    pieces = ["The", " answer", " is", " 42", "."]
    burst = "".join(
        [
            sse_data(chunk({"role": "assistant", "content": ""})),
            *(sse_data(chunk({"content": p})) for p in pieces),
            sse_data(chunk({}, "stop")),
            "data: [DONE]\n\n",
        ]
    )
    upstream.queue(Sse([burst]))  # one write: the whole answer in one read
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test")
    provider = OpenAIProvider("local", OpenAISettings(base_url=f"{upstream.url}/v1", api_key_env="TEST_OPENAI_KEY"))
    relayed: list[str] = []
    first = asyncio.Event()
    seen_by_stream: list[list[str]] = []

    async def stream() -> None:  # the caller's stream, woken by the first piece as a servicer is
        await first.wait()
        seen_by_stream.append(list(relayed))

    def on_delta(text: str) -> None:
        relayed.append(text)
        first.set()

    sender = asyncio.create_task(stream())
    call = ModelCall(model=MODEL, messages=(Message(Role.USER, "6 times 7?"),), timeout_s=5)
    try:
        response = await provider.complete(call, on_delta)
    finally:
        await provider.aclose()
    await sender
    assert seen_by_stream == [["The"]], "the stream ran after the first piece, before the others were parsed"
    assert relayed == pieces
    assert response.message.content == "The answer is 42."
