"""``chat.completion.chunk`` events as Server-Sent Events.

A successful stream is: a role chunk, content chunks, (tool calls), a chunk with
``finish_reason`` and policyd's detail, the usage chunk when
``stream_options.include_usage`` asked for it, and ``data: [DONE]``. A failure after
the stream started is one ``data: {"error": {...}}`` event and the end of the body,
never ``[DONE]``: OpenAI's SDKs raise on such an event, so a broken answer cannot pass
for a short one.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from policyd.server.openai import response
from policyd.server.openai.errors import HttpError
from policyd.types import Message, Outcome

DONE = b"data: [DONE]\n\n"
HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


def headers(request_id: str) -> dict[str, str]:
    """A stream's response headers, in the order they are written."""
    return {**HEADERS, "x-request-id": request_id, "x-policyd-request-id": request_id}


class StreamOut(Protocol):
    """Where one stream's bytes go on the lean path (``fast.py``): written as the deltas come."""

    started: bool
    """Whether the head went out (with the first :meth:`write`): an error can no longer be a plain answer."""

    def open(self, request_id: str) -> None:
        """Make the response head; raises ValueError when a header cannot be sent (a line break)."""

    def write(self, data: bytes) -> None:
        """Send one delta's events (the first write with the head); never raises (a gone client is dropped)."""


def event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


_MARK = "\x00policyd-content\x00"
"""Stands for a content chunk's text while its two fixed pieces are made (JSON escapes it as \\u0000...)."""


def error_event(error: HttpError) -> bytes:
    return event(error.body())


class Chunks:
    """Builds one stream's chunks; every chunk carries the same id, created time and model.

    The model is the one the caller asked for: which catalog model answers is known
    only at the end (``policyd.attempts`` of the finishing chunk says). A content chunk
    is its text's JSON between two pieces made once per stream: the same bytes as the
    whole chunk's ``orjson.dumps``, without building the chunk's dicts per piece.
    """

    __slots__ = ("_after", "_before", "created", "include_usage", "model", "request_id")

    def __init__(self, request_id: str, model: str, created: int, include_usage: bool) -> None:
        self.request_id = request_id
        self.model = model
        self.created = created
        self.include_usage = include_usage
        # The text is the chunk's last caller-set string (the model and id come before it).
        self._before, _, self._after = self._chunk({"content": _MARK}).rpartition(orjson.dumps(_MARK))

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        payload: dict[str, Any] = {
            "id": response.completion_id(self.request_id),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if self.include_usage:
            payload["usage"] = None
        payload.update(extra)
        return event(payload)

    def role(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def content(self, text: str) -> bytes:
        return self._before + orjson.dumps(text) + self._after

    def ending(self, outcome: Outcome, output: Message, streamed: bool) -> bytes:
        """What follows the last delta: unstreamed text, tool calls, the finish, usage, ``[DONE]``."""
        parts = []
        if not streamed and output.content:
            parts.append(self.content(output.content))
        if output.tool_calls:
            calls = [{"index": i, **call} for i, call in enumerate(response.tool_calls(output))]
            parts.append(self._chunk({"tool_calls": calls}))
        parts.append(self._chunk({}, response.finish_reason(outcome, output), policyd=response.detail(outcome)))
        if self.include_usage:
            parts.append(
                event(
                    {
                        "id": response.completion_id(self.request_id),
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": response.usage(outcome),
                    }
                )
            )
        parts.append(DONE)
        return b"".join(parts)
