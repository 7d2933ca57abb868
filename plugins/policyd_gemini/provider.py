"""The ``gemini`` provider: generateContent and streamGenerateContent (SSE) over HTTP."""

from __future__ import annotations

import json
from typing import Any, Literal

from policyd_http import HttpProvider, HttpSettings, SseEvent
from policyd_http.classify import malformed
from pydantic import Field, field_validator

from policyd.plugin.specs import DeltaSink
from policyd.types import ModelCall, ModelResponse
from policyd_gemini.wire import ResponseAccumulator, request_body

DEFAULT_BUDGETS = {"off": 0, "low": 1024, "medium": 8192, "high": 24576}


class GeminiSettings(HttpSettings):
    base_url: str = "https://generativelanguage.googleapis.com"
    api_version: str = "v1beta"
    thinking_budgets: dict[str, int] = DEFAULT_BUDGETS
    """``thinkingBudget`` per effort level for thinking models (0 turns thinking off; -1 lets the model decide)."""
    json_schema_field: Literal["responseSchema", "responseJsonSchema"] = "responseSchema"
    top_logprobs: int = Field(default=0, ge=0, le=20)

    @field_validator("thinking_budgets", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        """YAML 1.1 reads an unquoted ``off:`` key as False."""
        if isinstance(value, dict):
            return {("off" if k is False else k): v for k, v in value.items()}
        return value

    @field_validator("thinking_budgets")
    @classmethod
    def _budgets(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(DEFAULT_BUDGETS))
        if unknown:
            raise ValueError(f"unknown effort level(s) {', '.join(unknown)} (known: off, low, medium, high)")
        if any(v < -1 for v in value.values()):
            raise ValueError("budgets are -1 (dynamic), 0 (off) or a positive token count")
        return {**DEFAULT_BUDGETS, **value}


class GeminiProvider(HttpProvider):
    settings: GeminiSettings

    def __init__(self, name: str, settings: GeminiSettings) -> None:
        super().__init__(name, settings)

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

    def parse(self, call: ModelCall, data: Any) -> ModelResponse:
        if not isinstance(data, dict):
            raise malformed(self.name, f"expected a JSON object, got {type(data).__name__}")
        acc = ResponseAccumulator(self.name, call)
        acc.chunk(data)
        return acc.result(streamed=False)

    def stream(self, call: ModelCall, on_delta: DeltaSink) -> _Stream:
        return _Stream(ResponseAccumulator(self.name, call), on_delta)


class _Stream:
    def __init__(self, acc: ResponseAccumulator, on_delta: DeltaSink) -> None:
        self.acc = acc
        self.on_delta = on_delta

    def on_event(self, event: SseEvent) -> None:
        if not event.data:
            return
        added = self.acc.chunk(json.loads(event.data))
        if added:
            self.on_delta(added)

    def result(self) -> ModelResponse:
        return self.acc.result(streamed=True)
