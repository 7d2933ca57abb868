"""OpenAI Embeddings body → domain EmbedRequest, and EmbedResult → OpenAI's ``list`` of embeddings.

The same translation :mod:`policyd.server.embed_convert` does for gRPC's ``Embed``, with
OpenAI's field names: ``input`` (a string or a list of strings; token arrays are refused),
``model`` (resolved as chat resolves it: :func:`~policyd.server.openai.convert.resolve_model`),
``dimensions``, ``encoding_format`` (``float`` or ``base64``: little-endian float32 bytes, which
the OpenAI SDKs ask for by default and decode) and ``user`` (the label ``user``). Every error is
an :class:`~policyd.errors.InvalidArgument` naming the field (``input[3]``).
"""

from __future__ import annotations

import array
import base64
import sys
from collections.abc import Mapping
from typing import Any

from policyd.embedding import EmbedRequest, EmbedResult, EncodingFormat
from policyd.errors import InvalidArgument
from policyd.server.embed_convert import MAX_DIMENSIONS, MAX_TEXTS
from policyd.server.openai import response
from policyd.server.openai.convert import Target
from policyd.server.openai.intent import Intent
from policyd.types import Constraints


def _texts(value: Any) -> tuple[str, ...]:
    """``input``: one string or a list of non-empty strings."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise InvalidArgument("input", "is required: a non-empty string or a list of them")
    if len(value) > MAX_TEXTS:
        raise InvalidArgument("input", f"at most {MAX_TEXTS} texts (got {len(value)})")
    for i, text in enumerate(value):
        if isinstance(text, (int, list)) and not isinstance(text, bool):
            raise InvalidArgument("input", "token arrays are not supported: send the texts as strings")
        if not isinstance(text, str):
            raise InvalidArgument(f"input[{i}]", f"must be a string (got {type(text).__name__})")
        if not text:
            raise InvalidArgument(f"input[{i}]", "must not be empty")
    return tuple(value)


def _dimensions(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DIMENSIONS:
        raise InvalidArgument("dimensions", f"must be an integer from 1 to {MAX_DIMENSIONS} (got {value!r})")
    return value


def encoding_of(body: Mapping[str, Any]) -> EncodingFormat:
    value = body.get("encoding_format")
    if value is None:
        return EncodingFormat.FLOAT
    try:
        return EncodingFormat(value)
    except ValueError:
        raise InvalidArgument("encoding_format", f"must be 'float' or 'base64' (got {value!r})") from None


def embed_request_from_body(
    body: Mapping[str, Any],
    intent: Intent,
    target: Target,
    *,
    request_id: str,
    tenant: str,
    deadline: float,
) -> EmbedRequest:
    """Validate and translate; ``tenant`` and ``deadline`` come from the transport, not the body."""
    labels = dict(intent.labels)
    if body.get("user") is not None:
        if not isinstance(body["user"], str):
            raise InvalidArgument("user", "must be a string")
        labels["user"] = body["user"]
    texts = _texts(body.get("input"))
    encoding_of(body)  # validated before any upstream call
    return EmbedRequest(
        request_id=request_id,
        texts=texts,
        task=intent.task,
        labels=labels,
        constraints=Constraints(
            max_cost_usd=intent.max_cost_usd,
            allowed_models=frozenset((target.model,)) if target.model else frozenset(),
        ),
        cache_mode=intent.cache_mode,
        policy=target.policy,
        tenant=tenant,
        dimensions=_dimensions(body.get("dimensions")),
        deadline=deadline,
    )


def _base64(values: array.array[float]) -> str:
    """Little-endian float32 bytes, base64: what OpenAI answers and its SDKs decode."""
    if sys.byteorder != "little":
        values = array.array("f", values)
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


def embeddings_list(result: EmbedResult, asked: str, encoding: EncodingFormat) -> dict[str, Any]:
    """OpenAI's answer: ``{"object": "list", "data": [...], "model", "usage"}`` plus the ``policyd`` field."""
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": _base64(v) if encoding is EncodingFormat.BASE64 else v.tolist(),
        }
        for i, v in enumerate(result.vectors)
    ]
    detail = response.detail(result.outcome)
    detail["dimensions"] = result.dimensions
    detail["cached"] = list(result.cached)
    return {
        "object": "list",
        "data": data,
        "model": result.model or asked,
        "usage": {"prompt_tokens": result.input_tokens, "total_tokens": result.input_tokens},
        "policyd": detail,
    }
