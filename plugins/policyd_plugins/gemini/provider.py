"""The ``gemini`` provider: generateContent and streamGenerateContent (SSE) over HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson
from pydantic import Field, field_validator

from policyd.api import DeltaSink, ModelCall, ModelResponse
from policyd_plugins.gemini.embeddings import GeminiEmbeddings, GeminiEmbeddingSettings
from policyd_plugins.gemini.wire import ResponseAccumulator, request_body
from policyd_plugins.http import EventStream, HttpSettings
from policyd_plugins.http.settings import effort_budgets

DEFAULT_BUDGETS = {"off": 0, "low": 1024, "medium": 8192, "high": 24576}


class GeminiSettings(HttpSettings, GeminiEmbeddingSettings):
    base_url: str = "https://generativelanguage.googleapis.com"
    api_version: str = "v1beta"
    thinking_budgets: dict[str, int] = DEFAULT_BUDGETS
    """``thinkingBudget`` per effort level for thinking models (0 turns thinking off; -1 lets the model decide)."""
    json_schema_field: Literal["responseSchema", "responseJsonSchema"] = "responseSchema"
    top_logprobs: int = Field(default=0, ge=0, le=20)

    @field_validator("thinking_budgets", mode="before")
    @classmethod
    def _budgets(cls, value: object) -> dict[str, int]:
        return effort_budgets(value, DEFAULT_BUDGETS, minimum=-1)  # -1 dynamic, 0 off


class GeminiProvider(GeminiEmbeddings):
    settings: GeminiSettings

    def url(self, call: ModelCall, stream: bool) -> str:
        model = call.model.upstream.removeprefix("models/")
        base = f"{self.settings.base_url}/{self.settings.api_version}/models/{model}"
        return f"{base}:streamGenerateContent?alt=sse" if stream else f"{base}:generateContent"

    def body(self, call: ModelCall, stream: bool) -> dict[str, Any]:
        s = self.settings
        return request_body(
            call, budgets=s.thinking_budgets, json_schema_field=s.json_schema_field, top_logprobs=s.top_logprobs
        )

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def parse(self, call: ModelCall, data: Mapping[str, Any]) -> ModelResponse:
        acc = ResponseAccumulator(self.name, call)
        acc.chunk(data)
        return acc.result(streamed=False)

    def stream(self, call: ModelCall, on_delta: DeltaSink) -> EventStream:
        acc = ResponseAccumulator(self.name, call)
        return EventStream(
            lambda event: acc.chunk(orjson.loads(event.data)), lambda: acc.result(streamed=True), on_delta
        )
