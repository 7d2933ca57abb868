"""A scripted fake provider: models answer what a test script says, with delays and errors.

A script maps ``model`` or ``model@role`` (``glm-4.5@validate``) to the steps that
model takes, in order; the last one repeats. A step is a text, or a mapping with
``text``, ``tool_calls``, ``delay_ms``, ``error`` (a non-retryable upstream error)
and ``logprobs``. The provider registers as kind ``scripted`` through the real hook,
so everything above the upstream (engine, strategies, validators, the daemon) runs
exactly as in production.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from policyd.api import (
    DeltaSink,
    Message,
    ModelCall,
    ModelResponse,
    ProviderSpec,
    Role,
    ToolCall,
    UpstreamError,
    Usage,
    hookimpl,
    tokens,
)

KIND = "scripted"


class ScriptedToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] = {}


class ScriptStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = ""
    tool_calls: list[ScriptedToolCall] = []
    delay_ms: float = 0
    error: str = ""
    """Fail with a non-retryable upstream error carrying this message."""
    logprobs: list[float] | None = None
    """Returned only when the call asks for log-probabilities."""


def _steps(value: Any) -> Any:
    """``"hi"`` → ``[{"text": "hi"}]``; a single mapping → a list of one; strings in a list → texts."""
    items = value if isinstance(value, list) else [value]
    return [{"text": item} if isinstance(item, str) else item for item in items]


class ScriptedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    script: dict[str, list[ScriptStep]] = {}

    @field_validator("script", mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        return {key: _steps(steps) for key, steps in value.items()} if isinstance(value, Mapping) else value


class ScriptedProvider:
    """Answers from its script and keeps every call it received in ``calls``."""

    def __init__(self, name: str, settings: ScriptedSettings) -> None:
        self.name = name
        self.script = settings.script
        self.used: dict[str, int] = defaultdict(int)
        self.calls: list[ModelCall] = []
        self.cancelled: list[ModelCall] = []
        """Calls cancelled while the script made them wait (e.g. the losing half of a hedge)."""

    def _step(self, call: ModelCall) -> ScriptStep:
        for key in (f"{call.model.id}@{call.role.value}", call.model.id):
            steps = self.script.get(key)
            if steps:
                index = min(self.used[key], len(steps) - 1)
                self.used[key] += 1
                return steps[index]
        raise UpstreamError(self.name, f"no script for {call.model.id} ({call.role.value})", retryable=False)

    def models_called(self) -> list[str]:
        return [c.model.id for c in self.calls]

    async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
        self.calls.append(call)
        step = self._step(call)
        if step.delay_ms:
            try:
                await asyncio.sleep(step.delay_ms / 1000)
            except asyncio.CancelledError:
                self.cancelled.append(call)
                raise
        if step.error:
            raise UpstreamError(self.name, step.error, retryable=False, status=503)
        tool_calls = tuple(
            ToolCall(id=f"call_{i}", name=t.name, arguments_json=json.dumps(t.arguments, sort_keys=True))
            for i, t in enumerate(step.tool_calls)
        )
        if on_delta is not None and step.text:
            on_delta(step.text)
        output = tokens.text_tokens(step.text) + sum(tokens.text_tokens(t.arguments_json) for t in tool_calls)
        return ModelResponse(
            message=Message(role=Role.ASSISTANT, content=step.text, tool_calls=tool_calls),
            usage=Usage(input_tokens=tokens.input_tokens(call.messages, call.tools), output_tokens=output),
            finish_reason="tool_calls" if tool_calls else "stop",
            response_model=f"scripted/{call.model.upstream}",
            logprobs=tuple(step.logprobs) if call.logprobs and step.logprobs is not None else None,
        )

    async def aclose(self) -> None:
        return None


class ScriptedProviderPlugin:
    """The plugin that registers provider kind ``scripted``."""

    POLICYD_API = "1.0"

    @hookimpl
    def policyd_register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        register(ProviderSpec(kind=KIND, factory=ScriptedProvider, settings=ScriptedSettings))
