"""The ``anthropic`` provider: the Messages API over HTTP, with extended thinking and streaming."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from policyd.api import DeltaSink, ModelCall, ModelResponse
from policyd_plugins.anthropic.wire import EventAccumulator, parse_response, request_body
from policyd_plugins.http import EventStream, HttpProvider, HttpSettings
from policyd_plugins.http.settings import effort_budgets

DEFAULT_BUDGETS = {"low": 2048, "medium": 8192, "high": 24576}


class AnthropicSettings(HttpSettings):
    base_url: str = "https://api.anthropic.com"
    api_version: str = "2023-06-01"
    """Sent as the ``anthropic-version`` header."""
    default_max_tokens: int = Field(default=4096, ge=1)
    """``max_tokens`` (required by the API) for calls that set no ``max_output_tokens``."""
    thinking_budgets: dict[str, int] = DEFAULT_BUDGETS
    """``thinking.budget_tokens`` per effort level (low, medium, high); at least 1024 each."""

    @field_validator("thinking_budgets", mode="before")
    @classmethod
    def _budgets(cls, value: object) -> dict[str, int]:
        return effort_budgets(value, DEFAULT_BUDGETS, minimum=1024)  # the API's minimum budget_tokens


class AnthropicProvider(HttpProvider):
    settings: AnthropicSettings

    def url(self, call: ModelCall, stream: bool) -> str:
        return f"{self.settings.base_url}/v1/messages"

    def body(self, call: ModelCall, stream: bool) -> dict[str, Any]:
        s = self.settings
        return request_body(call, stream=stream, default_max_tokens=s.default_max_tokens, budgets=s.thinking_budgets)

    def headers(self, call: ModelCall) -> dict[str, str]:
        return {"anthropic-version": self.settings.api_version, **super().headers(call)}

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def parse(self, call: ModelCall, data: Mapping[str, Any]) -> ModelResponse:
        return parse_response(self.name, call, data)

    def stream(self, call: ModelCall, on_delta: DeltaSink) -> EventStream:
        acc = EventAccumulator(self.name, call)
        return EventStream(acc.take, acc.result, on_delta)
