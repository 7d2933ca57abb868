"""Cache entries as JSON bytes: a stored answer and what it was stored for.

Nothing here (or anywhere in the cache) pickles or unpickles: an entry is UTF-8 JSON
with a fixed shape, and anything else found on disk is :class:`CorruptEntry`, which
the store treats as a miss and evicts. The entry repeats its key and tenant so that a
value planted under another key is refused too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from policyd.types import Message, ModelResponse, Role, ToolCall, Usage

FORMAT = 1


class CorruptEntry(ValueError):
    """A stored value that is not a well-formed entry of this format."""


@dataclass(frozen=True)
class Entry:
    key: str
    tenant: str
    model: str
    stored_at: float
    expires_at: float
    response: ModelResponse


def message_doc(m: Message) -> dict[str, Any]:
    """A message as plain JSON data (used by entries and by cache keys)."""
    return {
        "role": m.role._value_,  # the attribute ``.value`` reads through enum's property (slower)
        "content": m.content,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments_json": c.arguments_json} for c in m.tool_calls]
        if m.tool_calls
        else [],
        "tool_call_id": m.tool_call_id,
        "name": m.name,
    }


def encode(entry: Entry) -> bytes:
    return encode_parts(entry.key, entry.tenant, entry.model, entry.stored_at, entry.expires_at, entry.response)


def encode_parts(key: str, tenant: str, model: str, stored_at: float, expires_at: float, r: ModelResponse) -> bytes:
    """:func:`encode` of the entry these make, without making it (the cache layer stores every miss)."""
    usage = r.usage
    doc = {
        "format": FORMAT,
        "key": key,
        "tenant": tenant,
        "model": model,
        "stored_at": stored_at,
        "expires_at": expires_at,
        "message": message_doc(r.message),
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "estimated": usage.estimated,
        },
        "finish_reason": r.finish_reason,
        "response_model": r.response_model,
        "logprobs": list(r.logprobs) if r.logprobs is not None else None,
    }
    if r.logprobs is not None:  # may hold -Infinity, which orjson would write as null
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    return orjson.dumps(doc)  # the same JSON, in a fraction of the time (floats may be spelled 1e-5 for 1e-05)


def _get(doc: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(doc, dict) or name not in doc:
        raise CorruptEntry(f"missing {name!r}")
    value = doc[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise CorruptEntry(f"{name!r} has type {type(value).__name__}")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _int(doc: Any, name: str) -> int:
    value: int = _get(doc, name, int)
    if value < 0:
        raise CorruptEntry(f"{name!r} is negative")
    return value


def _message(doc: Any) -> Message:
    try:
        role = Role(_get(doc, "role", str))
    except ValueError:
        raise CorruptEntry("unknown message role") from None
    calls = tuple(
        ToolCall(id=_get(c, "id", str), name=_get(c, "name", str), arguments_json=_get(c, "arguments_json", str))
        for c in _get(doc, "tool_calls", list)
    )
    return Message(
        role=role,
        content=_get(doc, "content", str),
        tool_calls=calls,
        tool_call_id=_get(doc, "tool_call_id", str),
        name=_get(doc, "name", str),
    )


def decode(data: bytes, *, key: str, tenant: str) -> Entry:
    """Parse and check an entry stored under ``key`` for ``tenant``; raises :class:`CorruptEntry`."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptEntry(f"not JSON: {exc}") from None
    if _get(doc, "format", int) != FORMAT:
        raise CorruptEntry(f"format {doc['format']!r}, expected {FORMAT}")
    if _get(doc, "key", str) != key or _get(doc, "tenant", str) != tenant:
        raise CorruptEntry("stored for another key or tenant")
    usage_doc = _get(doc, "usage", dict)
    logprobs = doc.get("logprobs")
    if logprobs is not None and (
        not isinstance(logprobs, list) or not all(isinstance(x, (int, float)) for x in logprobs)
    ):
        raise CorruptEntry("'logprobs' is not a list of numbers")
    response = ModelResponse(
        message=_message(_get(doc, "message", dict)),
        usage=Usage(
            input_tokens=_int(usage_doc, "input_tokens"),
            output_tokens=_int(usage_doc, "output_tokens"),
            reasoning_tokens=_int(usage_doc, "reasoning_tokens"),
            estimated=_get(usage_doc, "estimated", bool),
        ),
        finish_reason=_get(doc, "finish_reason", str),
        response_model=_get(doc, "response_model", str),
        logprobs=tuple(float(x) for x in logprobs) if logprobs is not None else None,
    )
    return Entry(
        key=key,
        tenant=tenant,
        model=_get(doc, "model", str),
        stored_at=float(_get(doc, "stored_at", (int, float))),
        expires_at=float(_get(doc, "expires_at", (int, float))),
        response=response,
    )
