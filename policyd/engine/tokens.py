"""Token estimates for budgets, explanations and upstreams that report no usage.

A rough 4-characters-per-token rule: close enough to reserve money before a call
(the real usage settles it afterwards) and clearly flagged where it stands in for
real usage.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from policyd.types import Effort, Message, Tool

CHARS_PER_TOKEN = 4
PER_MESSAGE_OVERHEAD = 4
DEFAULT_MAX_OUTPUT_TOKENS = 1024
"""Output tokens reserved for a call whose request sets no ``max_output_tokens``."""
REASONING_ALLOWANCE: dict[Effort, int] = {Effort.OFF: 0, Effort.LOW: 1024, Effort.MEDIUM: 4096, Effort.HIGH: 8192}
"""Reasoning tokens a thinking model may bill per effort level, reserved on top of the output allowance."""


def reasoning_allowance(effort: Effort, thinking: bool) -> int:
    """Worst-case reasoning tokens of one call; models without thinking support bill none."""
    return REASONING_ALLOWANCE[effort] if thinking else 0


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def message_tokens(messages: Iterable[Message]) -> int:
    total = 0
    for msg in messages:
        total += PER_MESSAGE_OVERHEAD + text_tokens(msg.content)
        for call in msg.tool_calls:
            total += text_tokens(call.name) + text_tokens(call.arguments_json)
    return total


def tool_tokens(tools: Iterable[Tool]) -> int:
    return sum(
        text_tokens(t.name) + text_tokens(t.description) + text_tokens(json.dumps(t.parameters, sort_keys=True))
        for t in tools
    )


RECENT_INPUTS = 64
_recent: dict[tuple[int, int], tuple[object, object, int]] = {}
"""Estimates of the latest message and tool tuples, by identity (each request's are estimated several
times: its rate-limit share, its explanation, the price of its call). The tuples of frozen messages and
tools are immutable, and the memo holds them, so an ``id`` is never reused while it is remembered."""


def input_tokens(messages: Iterable[Message], tools: Iterable[Tool] = ()) -> int:
    if type(messages) is not tuple or type(tools) is not tuple:
        return message_tokens(messages) + tool_tokens(tools)
    key = (id(messages), id(tools))
    known = _recent.get(key)
    if known is not None and known[0] is messages and known[1] is tools:
        return known[2]
    total = message_tokens(messages) + tool_tokens(tools)
    if len(_recent) >= RECENT_INPUTS:
        del _recent[next(iter(_recent))]  # the oldest
    _recent[key] = (messages, tools, total)
    return total
