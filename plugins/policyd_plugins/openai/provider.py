"""The ``openai-compatible`` provider: Chat Completions over HTTP, for any server that speaks it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from policyd.api import DeltaSink, ModelCall, ModelResponse
from policyd_plugins.http import EventStream, HttpSettings
from policyd_plugins.openai.embeddings import OpenAIEmbeddings, OpenAIEmbeddingSettings
from policyd_plugins.openai.wire import ChunkAccumulator, parse_response, request_body


class OpenAISettings(HttpSettings, OpenAIEmbeddingSettings):
    base_url: str = "https://api.openai.com/v1"
    """Up to and including the version segment: ``http://127.0.0.1:11434/v1`` for Ollama."""
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    """OpenAI's reasoning models want ``max_completion_tokens``; a model's ``options`` may override."""
    top_logprobs: int = Field(default=0, ge=0, le=20)
    """Alternatives per token to ask for when a call wants logprobs (0: only the chosen token)."""
    stream_usage: bool = True
    """Send ``stream_options.include_usage`` so streamed answers report real usage."""


class OpenAIProvider(OpenAIEmbeddings):
    settings: OpenAISettings

    def url(self, call: ModelCall, stream: bool) -> str:
        return f"{self.settings.base_url}/chat/completions"

    def body(self, call: ModelCall, stream: bool) -> dict[str, Any]:
        s = self.settings
        return request_body(
            call,
            stream=stream,
            max_tokens_field=s.max_tokens_field,
            top_logprobs=s.top_logprobs,
            stream_usage=s.stream_usage,
        )

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def parse(self, call: ModelCall, data: Mapping[str, Any]) -> ModelResponse:
        return parse_response(self.name, call, data)

    def stream(self, call: ModelCall, on_delta: DeltaSink) -> EventStream:
        acc = ChunkAccumulator(self.name, call)
        return EventStream(acc.take, acc.result, on_delta)
