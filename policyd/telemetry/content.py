"""Prompts and outputs in the GenAI conventions' message format, for opted-in content capture.

``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions``
hold JSON arrays of ``{"role", "parts": [{"type": "text", "content"}...]}`` objects
(tool calls as ``tool_call`` parts, tool results as ``tool_call_response`` parts).
Nothing here runs unless capture is on.
"""

from __future__ import annotations

import json
from typing import Any

from policyd.types import Message, Role


def _parts(message: Message) -> list[dict[str, Any]]:
    if message.role is Role.TOOL:
        return [{"type": "tool_call_response", "id": message.tool_call_id, "response": message.content}]
    parts: list[dict[str, Any]] = []
    if message.content:
        parts.append({"type": "text", "content": message.content})
    for call in message.tool_calls:
        parts.append({"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments_json})
    return parts


def system_instructions(messages: tuple[Message, ...]) -> str | None:
    parts = [{"type": "text", "content": m.content} for m in messages if m.role is Role.SYSTEM]
    return json.dumps(parts, ensure_ascii=False) if parts else None


def input_messages(messages: tuple[Message, ...]) -> str:
    chat = [{"role": m.role.value, "parts": _parts(m)} for m in messages if m.role is not Role.SYSTEM]
    return json.dumps(chat, ensure_ascii=False)


def output_messages(message: Message, finish_reason: str) -> str:
    out = {"role": message.role.value, "parts": _parts(message), "finish_reason": finish_reason}
    return json.dumps([out], ensure_ascii=False)


def message_dicts(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """The same format as plain data, for decision events."""
    return [{"role": m.role.value, "parts": _parts(m)} for m in messages]
