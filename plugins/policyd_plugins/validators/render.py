"""How validators see a conversation and a draft: as plain text, tool calls included."""

from __future__ import annotations

from policyd.api import Message


def message_text(message: Message) -> str:
    """The content of a message followed by its tool calls, one per line."""
    lines = [message.content] if message.content else []
    lines += [f"[tool call {c.name}({c.arguments_json})]" for c in message.tool_calls]
    return "\n".join(lines)


def transcript(messages: tuple[Message, ...]) -> str:
    """A conversation as ``role: text`` blocks, in order."""
    return "\n\n".join(f"{m.role.value}: {message_text(m)}" for m in messages)
