"""A test-only plugin: a provider that answers from a script, and a custom validator.

It is registered through the real hooks (``PluginHost.add``), so routing cases run
the engine, the strategies and the validators exactly as the daemon does; only the
upstream is scripted. A script maps ``model`` or ``model@role`` to the answers that
model gives, in order (the last one repeats).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from policyd.engine import tokens
from policyd.engine.context import StrategyContext
from policyd.errors import UpstreamError
from policyd.plugin import hookimpl
from policyd.plugin.specs import DeltaSink, ProviderSpec, ValidatorRef, ValidatorSpec
from policyd.types import Message, ModelCall, ModelResponse, Role, ToolCall, Usage, Verdict, VerdictKind


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


class ScriptedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    script: dict[str, list[ScriptStep]] = {}


class ScriptedProvider:
    def __init__(self, name: str, settings: ScriptedSettings) -> None:
        self.name = name
        self.script = settings.script
        self.used: dict[str, int] = defaultdict(int)
        self.calls: list[ModelCall] = []

    def _step(self, call: ModelCall) -> ScriptStep:
        for key in (f"{call.model.id}@{call.role.value}", call.model.id):
            steps = self.script.get(key)
            if steps:
                index = min(self.used[key], len(steps) - 1)
                self.used[key] += 1
                return steps[index]
        raise UpstreamError(self.name, f"no script for {call.model.id} ({call.role.value})", retryable=False)

    async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
        self.calls.append(call)
        step = self._step(call)
        if step.delay_ms:
            await asyncio.sleep(step.delay_ms / 1000)
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


class ContainsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    word: str


class ContainsValidator:
    """A custom validator as a third party would write one: accepts answers containing a word."""

    def __init__(self, ref: ValidatorRef, params: ContainsParams) -> None:
        self.word = params.word

    async def __call__(self, ctx: StrategyContext, draft: Message) -> Verdict:
        if self.word in draft.content:
            return Verdict(VerdictKind.ACCEPT)
        return Verdict(VerdictKind.REJECT, reason=f"the answer does not mention {self.word!r}")


class ScriptedPlugin:
    @hookimpl
    def policyd_register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        register(ProviderSpec(kind="scripted", factory=ScriptedProvider, settings=ScriptedSettings))

    @hookimpl
    def policyd_register_validators(self, register: Callable[[ValidatorSpec], None]) -> None:
        register(ValidatorSpec(name="test-contains", factory=ContainsValidator, params=ContainsParams))
