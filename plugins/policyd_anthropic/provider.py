"""The ``anthropic`` provider: the Messages API over HTTP, with extended thinking and streaming."""

from __future__ import annotations

import json
from typing import Any

from policyd_http import HttpProvider, HttpSettings, SseEvent
from policyd_http.classify import malformed
from pydantic import Field, field_validator

from policyd.plugin.specs import DeltaSink
from policyd.types import ModelCall, ModelResponse
from policyd_anthropic.wire import EventAccumulator, parse_response, request_body

DEFAULT_BUDGETS = {"low": 2048, "medium": 8192, "high": 24576}


class AnthropicSettings(HttpSettings):
    base_url: str = "https://api.anthropic.com"
    api_version: str = "2023-06-01"
    """Sent as the ``anthropic-version`` header."""
    default_max_tokens: int = Field(default=4096, ge=1)
    """``max_tokens`` (required by the API) for calls that set no ``max_output_tokens``."""
    thinking_budgets: dict[str, int] = DEFAULT_BUDGETS
    """``thinking.budget_tokens`` per effort level (low, medium, high); at least 1024 each."""

    @field_validator("thinking_budgets")
    @classmethod
    def _budgets(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(DEFAULT_BUDGETS))
        if unknown:
            raise ValueError(f"unknown effort level(s) {', '.join(unknown)} (known: low, medium, high)")
        small = sorted(k for k, v in value.items() if v < 1024)
        if small:
            raise ValueError(f"budget_tokens must be at least 1024 (too small: {', '.join(small)})")
        return {**DEFAULT_BUDGETS, **value}


class AnthropicProvider(HttpProvider):
    settings: AnthropicSettings

    def __init__(self, name: str, settings: AnthropicSettings) -> None:
        super().__init__(name, settings)

    def url(self, call: ModelCall, stream: bool) -> str:
        return f"{self.settings.base_url}/v1/messages"

    def body(self, call: ModelCall, stream: bool) -> dict[str, Any]:
        s = self.settings
        return request_body(call, stream=stream, default_max_tokens=s.default_max_tokens, budgets=s.thinking_budgets)

    def headers(self, call: ModelCall) -> dict[str, str]:
        return {"anthropic-version": self.settings.api_version, **super().headers(call)}

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def parse(self, call: ModelCall, data: Any) -> ModelResponse:
        if not isinstance(data, dict):
            raise malformed(self.name, f"expected a JSON object, got {type(data).__name__}")
        return parse_response(self.name, call, data)

    def stream(self, call: ModelCall, on_delta: DeltaSink) -> _Stream:
        return _Stream(EventAccumulator(self.name, call), on_delta)


class _Stream:
    def __init__(self, acc: EventAccumulator, on_delta: DeltaSink) -> None:
        self.acc = acc
        self.on_delta = on_delta

    def on_event(self, event: SseEvent) -> None:
        if not event.data:
            return
        added = self.acc.event(event.event, json.loads(event.data))
        if added:
            self.on_delta(added)

    def result(self) -> ModelResponse:
        return self.acc.result()
