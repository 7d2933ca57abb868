"""The Anthropic Messages API wire format, as pure functions and a stream accumulator.

System messages go to the top-level ``system``; consecutive messages of one role are
merged (the API wants user and assistant turns to alternate); tool calls become
``tool_use`` blocks and tool answers ``tool_result`` blocks in a user turn. Effort
maps to ``thinking.budget_tokens``; ``max_tokens`` (required) then covers the budget
plus the answer's own allowance. The API has no JSON mode, so JSON response formats
become an instruction in the system prompt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from policyd.api import (
    Effort,
    Message,
    ModelCall,
    ModelResponse,
    Role,
    ToolCall,
    ToolChoice,
    UpstreamError,
    Usage,
)
from policyd_plugins.http.classify import classify_status, refused
from policyd_plugins.http.provider import estimated_usage, json_object
from policyd_plugins.http.sse import SseEvent

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
}
ERROR_STATUSES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _blocks(m: Message) -> list[dict[str, Any]]:
    if m.role is Role.TOOL:
        return [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
    for c in m.tool_calls:
        blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": dict(json_object(c.arguments_json))})
    return blocks


def split_messages(messages: tuple[Message, ...]) -> tuple[str, list[dict[str, Any]]]:
    """``(system text, alternating turns)``."""
    system = [m.content for m in messages if m.role is Role.SYSTEM and m.content]
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role is Role.SYSTEM:
            continue
        role = "assistant" if m.role is Role.ASSISTANT else "user"
        blocks = _blocks(m)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(system), turns


def json_instruction(call: ModelCall) -> str:
    fmt = call.params.response_format
    if fmt.kind == "json_schema" and fmt.json_schema is not None:
        schema = json.dumps(dict(fmt.json_schema), sort_keys=True)
        return f"Answer with one JSON value that conforms to this JSON Schema, and nothing else:\n{schema}"
    if fmt.kind == "json_object":
        return "Answer with one JSON object and nothing else."
    return ""


_ANTHROPIC_MODES = {"auto": "auto", "none": "none", "required": "any"}


def tool_choice_json(choice: ToolChoice | None) -> dict[str, Any] | None:
    """Anthropic's ``tool_choice``: ``{"type": "auto" | "none" | "any"}`` or ``{"type": "tool", "name": ...}``."""
    if choice is None:
        return None
    if choice.mode == "function":
        return {"type": "tool", "name": choice.function}
    return {"type": _ANTHROPIC_MODES[choice.mode]}


def request_body(
    call: ModelCall, *, stream: bool, default_max_tokens: int, budgets: Mapping[str, int]
) -> dict[str, Any]:
    p = call.params
    system, turns = split_messages(call.messages)
    instruction = json_instruction(call)
    if instruction:
        system = f"{system}\n\n{instruction}" if system else instruction
    answer_tokens = p.max_output_tokens or default_max_tokens
    body: dict[str, Any] = {"model": call.model.upstream, "max_tokens": answer_tokens, "messages": turns}
    if system:
        body["system"] = system
    if call.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": dict(t.parameters) or {"type": "object"}}
            for t in call.tools
        ]
        choice = tool_choice_json(p.tool_choice)
        if choice is not None:
            body["tool_choice"] = choice
    thinking = call.model.thinking and call.effort is not Effort.OFF
    if thinking:
        budget = int(budgets[call.effort.value])
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        body["max_tokens"] = answer_tokens + budget
    else:  # extended thinking accepts neither temperature nor top_p changes
        if p.temperature is not None:
            body["temperature"] = min(p.temperature, 1.0)
        if p.top_p is not None:
            body["top_p"] = p.top_p
    if p.stop:
        body["stop_sequences"] = list(p.stop)
    if stream:
        body["stream"] = True
    return body


def error_from(provider: str, err: Mapping[str, Any]) -> UpstreamError:
    """An ``{"type": "error", "error": {...}}`` object (mid-stream or in a 200 body)."""
    status = ERROR_STATUSES.get(str(err.get("type")), 500)
    return classify_status(provider, status, json.dumps({"error": dict(err)}), {})


def _usage(call: ModelCall, usage: Mapping[str, Any], text: str) -> Usage:
    """Cache writes and reads count as input; thinking is already inside ``output_tokens``."""
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    inp = sum(int(usage.get(k) or 0) for k in keys)
    return estimated_usage(call, text, inp, int(usage.get("output_tokens") or 0))


def _finish(provider: str, stop_reason: str | None) -> str:
    if stop_reason == "refusal":
        raise refused(provider, "stop_reason refusal")
    return STOP_REASONS.get(stop_reason or "end_turn", stop_reason or "stop")


def _response(
    provider: str, call: ModelCall, blocks: Sequence[Mapping[str, Any]], stop: str | None, usage: Any, model: str
) -> ModelResponse:
    text = "".join(b.get("text") or "" for b in blocks if b.get("type") == "text")
    calls = tuple(
        ToolCall(id=b["id"], name=b["name"], arguments_json=json.dumps(b.get("input") or {}))
        for b in blocks
        if b.get("type") == "tool_use"
    )
    return ModelResponse(
        message=Message(role=Role.ASSISTANT, content=text, tool_calls=calls),
        usage=_usage(call, usage or {}, text),
        finish_reason=_finish(provider, stop),
        response_model=model or call.model.upstream,
    )


def parse_response(provider: str, call: ModelCall, data: Mapping[str, Any]) -> ModelResponse:
    if data.get("type") == "error":
        raise error_from(provider, data["error"])
    return _response(provider, call, data["content"], data.get("stop_reason"), data.get("usage"), data.get("model", ""))


class EventAccumulator:
    """Rebuilds a message from the streaming event sequence, passing text deltas on."""

    def __init__(self, provider: str, call: ModelCall) -> None:
        self.provider = provider
        self.call = call
        self.blocks: dict[int, dict[str, Any]] = {}
        self.partial_json: dict[int, list[str]] = {}
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.model = ""
        self.stopped = False

    def take(self, event: SseEvent) -> str:
        return self.event(event.event, orjson.loads(event.data))

    def event(self, kind: str, data: Mapping[str, Any]) -> str:
        """Takes one event; returns the answer text it adds."""
        if kind == "error" or data.get("type") == "error":
            raise error_from(self.provider, data["error"])
        if kind == "message_start":
            message = data["message"]
            self.model = message.get("model", "")
            self.usage.update(message.get("usage") or {})
        elif kind == "content_block_start":
            self.blocks[int(data["index"])] = dict(data["content_block"])
        elif kind == "content_block_delta":
            index, delta = int(data["index"]), data["delta"]
            block = self.blocks[index]
            if delta["type"] == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
                return str(delta["text"])
            if delta["type"] == "input_json_delta":
                self.partial_json.setdefault(index, []).append(delta["partial_json"])
        elif kind == "content_block_stop":
            index = int(data["index"])
            if index in self.partial_json:
                self.blocks[index]["input"] = json_object("".join(self.partial_json.pop(index)))
        elif kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            self.usage.update(data.get("usage") or {})
        elif kind == "message_stop":
            self.stopped = True
        return ""  # ping and unknown events carry no answer

    def result(self) -> ModelResponse:
        if not self.stopped:
            raise UpstreamError(self.provider, "malformed response: stream ended before message_stop", retryable=True)
        blocks = [self.blocks[i] for i in sorted(self.blocks)]
        return _response(self.provider, self.call, blocks, self.stop_reason, self.usage, self.model)
