"""A stream's content chunks are made from two pieces built once: the same bytes as the whole chunk."""

from __future__ import annotations

import orjson
import pytest

from policyd.server.openai import sse

TEXTS = ["The", "", 'quote " and \\ back', "é 😀 \u2028 line\nbreak", "\x00policyd-content\x00"]


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("text", TEXTS)
def test_a_content_chunk_is_the_standard_chunk_with_its_text(text: str, include_usage: bool):
    model = 'a "model" named \x00policyd-content\x00'  # a caller's model string is echoed as is
    chunk = sse.Chunks("req-1", model, 1767225600, include_usage).content(text)
    assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n")
    expected = {
        "id": "chatcmpl-req-1",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": model,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None, "logprobs": None}],
        **({"usage": None} if include_usage else {}),
    }
    assert orjson.loads(chunk[6:]) == expected
    assert list(orjson.loads(chunk[6:])) == list(expected), "the keys in the order OpenAI sends them"
