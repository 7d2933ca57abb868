"""The OpenAI Chat Completions wire format, as pure functions: ModelCall → body, JSON → ModelResponse.

Covers what OpenAI-compatible servers (OpenAI, vLLM, SGLang, Ollama, llama.cpp,
OpenRouter, DeepSeek, Moonshot, Zhipu, DashScope, Together, Groq, Fireworks) share:
messages, tools and tool_calls, response_format, stop, max_tokens or
max_completion_tokens, seed, logprobs and top_logprobs, and streamed chunks with
``stream_options.include_usage``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from policyd.api import Effort, Message, ModelCall, ModelResponse, Role, ToolCall, ToolChoice, UpstreamError, Usage
from policyd_plugins.http.classify import classify_status, refused
from policyd_plugins.http.provider import estimated_usage
from policyd_plugins.http.sse import SseEvent

FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls"}


def message_json(m: Message) -> dict[str, Any]:
    if m.role is Role.TOOL:
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    out: dict[str, Any] = {"role": m.role.value, "content": m.content}
    if m.name:
        out["name"] = m.name
    if m.tool_calls:
        out["content"] = m.content or None
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json}}
            for c in m.tool_calls
        ]
    return out


def effort_fields(call: ModelCall) -> dict[str, Any]:
    """The effort knob: a chat-template flag (Qwen3, GLM) where the model names one, else ``reasoning_effort``."""
    options = call.model.options
    flag = options.get("thinking_flag")
    if flag:
        value = call.effort is not Effort.OFF
        if options.get("thinking_flag_in", "chat_template_kwargs") == "body":
            return {str(flag): value}
        return {"chat_template_kwargs": {str(flag): value}}
    if not call.model.thinking:
        return {}
    if call.effort is Effort.OFF:
        off = options.get("reasoning_effort_off")
        return {"reasoning_effort": str(off)} if off else {}
    return {"reasoning_effort": call.effort.value}


def tool_choice_json(choice: ToolChoice | None) -> str | dict[str, Any] | None:
    """OpenAI's ``tool_choice``: "auto", "none", "required" or the named function."""
    if choice is None:
        return None
    if choice.mode == "function":
        return {"type": "function", "function": {"name": choice.function}}
    return choice.mode


def request_body(
    call: ModelCall, *, stream: bool, max_tokens_field: str, top_logprobs: int, stream_usage: bool
) -> dict[str, Any]:
    p = call.params
    body: dict[str, Any] = {"model": call.model.upstream, "messages": [message_json(m) for m in call.messages]}
    if call.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
            }
            for t in call.tools
        ]
        choice = tool_choice_json(p.tool_choice)
        if choice is not None:
            body["tool_choice"] = choice
    if p.max_output_tokens is not None:
        body[str(call.model.options.get("max_tokens_field", max_tokens_field))] = p.max_output_tokens
    if p.temperature is not None:
        body["temperature"] = p.temperature
    if p.top_p is not None:
        body["top_p"] = p.top_p
    if p.stop:
        body["stop"] = list(p.stop)
    if p.seed is not None:
        body["seed"] = p.seed
    fmt = p.response_format
    if fmt.kind == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif fmt.kind == "json_schema" and fmt.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": fmt.schema_name or "response", "schema": dict(fmt.json_schema)},
        }
    if call.logprobs:
        body["logprobs"] = True
        if top_logprobs:
            body["top_logprobs"] = top_logprobs
    body.update(effort_fields(call))
    if stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
    return body


def raise_for_error(provider: str, data: Mapping[str, Any]) -> None:
    """Some servers answer 200 (or stream an event) carrying ``{"error": ...}``."""
    err = data.get("error")
    if err is None:
        return
    code = err.get("code") if isinstance(err, dict) else None
    status = code if isinstance(code, int) and 400 <= code < 600 else 502
    raise classify_status(provider, status, json.dumps({"error": err}), {})


def _finish(provider: str, reason: str | None, content: str, refusal: str | None) -> str:
    if refusal:
        raise refused(provider, "the model refused", detail=refusal)
    if reason == "content_filter":
        if not content:
            raise refused(provider, "finish_reason content_filter")
        return "content_filter"
    return FINISH_REASONS.get(reason or "stop", reason or "stop")


def _usage(call: ModelCall, usage: Mapping[str, Any] | None, text: str) -> Usage:
    """``completion_tokens`` already includes reasoning tokens, so they are billed as output."""
    usage = usage or {}
    out = estimated_usage(call, text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    details = usage.get("completion_tokens_details")
    reasoning = int(details.get("reasoning_tokens") or 0) if details else 0
    return replace(out, reasoning_tokens=reasoning) if reasoning else out


def _logprobs(block: Mapping[str, Any] | None) -> list[float]:
    if not block:
        return []
    return [float(item["logprob"]) for item in block.get("content") or []]


def parse_response(provider: str, call: ModelCall, data: Mapping[str, Any]) -> ModelResponse:
    if data.get("error") is not None:
        raise_for_error(provider, data)
    choice = data["choices"][0]
    msg = choice["message"]
    content = msg.get("content") or ""
    tool_calls = msg.get("tool_calls")
    calls = (
        tuple(
            ToolCall(
                id=c.get("id") or f"call_{i}",
                name=c["function"]["name"],
                arguments_json=c["function"]["arguments"] or "{}",
            )
            for i, c in enumerate(tool_calls)
        )
        if tool_calls
        else ()
    )
    reason, refusal = choice.get("finish_reason"), msg.get("refusal")
    if reason == "stop" and not refusal:
        finish = "stop"  # what _finish says of it, the usual answer's reason
    else:
        finish = _finish(provider, reason, content or ("x" if calls else ""), refusal)
    block = choice.get("logprobs")
    logprobs = _logprobs(block) if block else None
    return ModelResponse(
        message=Message(role=Role.ASSISTANT, content=content, tool_calls=calls),
        usage=_usage(call, data.get("usage"), content),
        finish_reason=finish,
        response_model=data.get("model") or call.model.upstream,
        logprobs=tuple(logprobs) if call.logprobs and logprobs else None,
    )


class ChunkAccumulator:
    """Rebuilds a whole answer from streamed ``chat.completion.chunk`` objects."""

    def __init__(self, provider: str, call: ModelCall) -> None:
        self.provider = provider
        self.call = call
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, str]] = {}
        self.finish_reason: str | None = None
        self.refusal: list[str] = []
        self.usage: Mapping[str, Any] | None = None
        self.model = ""
        self.logprobs: list[float] = []
        self.done = False

    def take(self, event: SseEvent) -> str:
        """Takes one event: a chunk, or ``[DONE]``; returns the answer text it adds."""
        if self.done:
            return ""
        if event.data.strip() == "[DONE]":
            self.done = True
            return ""
        return self.chunk(orjson.loads(event.data))

    def chunk(self, data: Mapping[str, Any]) -> str:
        """Takes one chunk; returns the answer text it adds."""
        raise_for_error(self.provider, data)
        self.model = data.get("model") or self.model
        if data.get("usage"):
            self.usage = data["usage"]
        added = ""
        for choice in data.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                added += delta["content"]
            if delta.get("refusal"):
                self.refusal.append(delta["refusal"])
            for tc in delta.get("tool_calls") or []:
                slot = self.tool_calls.setdefault(int(tc.get("index", 0)), {"id": "", "name": "", "arguments": ""})
                fn = tc.get("function") or {}
                slot["id"] = tc.get("id") or slot["id"]
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
            self.logprobs.extend(_logprobs(choice.get("logprobs")))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if added:
            self.text.append(added)
        return added

    def result(self) -> ModelResponse:
        if not self.done and self.finish_reason is None:
            raise UpstreamError(
                self.provider, "malformed response: stream ended before the answer finished", retryable=True
            )
        content = "".join(self.text)
        calls = tuple(
            ToolCall(id=s["id"] or f"call_{i}", name=s["name"], arguments_json=s["arguments"] or "{}")
            for i, s in sorted(self.tool_calls.items())
        )
        finish = _finish(
            self.provider, self.finish_reason, content or ("x" if calls else ""), "".join(self.refusal) or None
        )
        return ModelResponse(
            message=Message(role=Role.ASSISTANT, content=content, tool_calls=calls),
            usage=_usage(self.call, self.usage, content),
            finish_reason=finish,
            response_model=self.model or self.call.model.upstream,
            logprobs=tuple(self.logprobs) if self.call.logprobs and self.logprobs else None,
        )
