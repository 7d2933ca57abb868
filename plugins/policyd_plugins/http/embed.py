"""Embedding requests over the shared transport: headers, key, JSON, and parser bugs as malformed answers.

Provider plugins give the URL, the body and a parser of the JSON answer; this sends it
through the instance's pooled :class:`~policyd_http.transport.HttpTransport` (phase
timeouts, error classes, the key redacted from every message) and times it.
"""

from __future__ import annotations

import array
import base64
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import orjson

from policyd.api import EmbedCall, EmbedResponse, UpstreamError, tokens
from policyd_plugins.http.classify import malformed
from policyd_plugins.http.provider import PARSE_ERRORS, HttpProvider


async def post_embedding(
    provider: HttpProvider,
    call: EmbedCall,
    url: str,
    body: Mapping[str, Any],
    parse: Callable[[Mapping[str, Any]], EmbedResponse],
) -> EmbedResponse:
    """POST one embedding request and parse its answer; every failure is an UpstreamError."""
    started = time.monotonic()
    headers = dict(provider.settings.headers)
    secret = provider.key.reveal() if provider.key is not None else None
    if secret:
        headers.update(provider.auth_headers(secret))
    # orjson: a batch's answer is megabytes of numbers, and json.loads was most of policyd's own time
    data = await provider.transport.post_json(url, body, headers, call.timeout_s, loads=orjson.loads)
    if not isinstance(data, dict):
        raise malformed(provider.name, f"expected a JSON object, got {type(data).__name__}")
    try:
        response = parse(data)
    except UpstreamError:
        raise
    except PARSE_ERRORS as exc:
        raise malformed(provider.name, f"unexpected shape ({type(exc).__name__}: {exc})") from None
    if len(response.vectors) != len(call.texts):
        raise malformed(provider.name, f"{len(response.vectors)} vectors for {len(call.texts)} texts")
    return replace(response, latency_ms=(time.monotonic() - started) * 1000)


def floats(values: Any) -> array.array[float]:
    """A JSON list of numbers as a float32 vector."""
    if not isinstance(values, list) or not values:
        raise ValueError("an embedding is not a non-empty list of numbers")
    try:
        return array.array("f", values)  # C-speed; refuses strings, nulls and lists (TypeError)
    except TypeError:
        raise ValueError("an embedding holds something other than numbers") from None


def from_base64(text: Any) -> array.array[float]:
    """OpenAI's ``encoding_format: base64``: little-endian float32 bytes, base64-encoded."""
    if not isinstance(text, str):
        raise ValueError("a base64 embedding is not a string")
    raw = base64.b64decode(text, validate=True)
    if not raw or len(raw) % 4:
        raise ValueError(f"a base64 embedding of {len(raw)} bytes is not float32 values")
    out: array.array[float] = array.array("f")
    out.frombytes(raw)
    if sys.byteorder == "big":
        out.byteswap()
    return out


def estimated_tokens(call: EmbedCall) -> int:
    return sum(tokens.text_tokens(t) for t in call.texts)
