"""OpenAI's ``POST /v1/embeddings``, as OpenAI, vLLM, Ollama, llama.cpp's server, TEI and others speak it.

Request: ``{"model", "input": [texts], "encoding_format": "float"|"base64", "dimensions"?}``;
``dimensions`` is sent only when the caller wants a length other than the model's own
(OpenAI accepts it for ``text-embedding-3-*`` and later). Answer: ``data[i].embedding``
(a list of numbers, or base64 of little-endian float32 values) with ``data[i].index``,
and ``usage.prompt_tokens``. OpenAI takes at most 2048 inputs (and 300,000 tokens in all)
per request; the engine splits larger batches to ``embedding_batch_size``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from policyd.api import EmbedCall, EmbedResponse, ModelSpec
from policyd_plugins.http import HttpProvider
from policyd_plugins.http.embed import estimated_tokens, floats, from_base64, post_embedding

OPENAI_MAX_INPUTS = 2048


class OpenAIEmbeddingSettings(BaseModel):
    embedding_batch_size: int = Field(default=OPENAI_MAX_INPUTS, ge=1, le=OPENAI_MAX_INPUTS)
    """Texts per ``/embeddings`` request (OpenAI's limit is 2048; some local servers want fewer)."""
    embedding_encoding: Literal["float", "base64"] = "float"
    """``base64`` moves a quarter of the bytes; every OpenAI-compatible server takes ``float``."""


def embedding_body(call: EmbedCall, encoding: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": call.model.upstream, "input": list(call.texts), "encoding_format": encoding}
    if call.dimensions is not None:
        body["dimensions"] = call.dimensions
    return body


def parse_embeddings(call: EmbedCall, data: Mapping[str, Any], encoding: str) -> EmbedResponse:
    items = sorted(data["data"], key=lambda item: int(item["index"]))
    if [int(item["index"]) for item in items] != list(range(len(call.texts))):
        raise ValueError(f"indexes do not cover the {len(call.texts)} inputs")
    decode = from_base64 if encoding == "base64" else floats
    vectors = tuple(decode(item["embedding"]) for item in items)
    usage = data.get("usage") or {}
    used = usage.get("prompt_tokens") or usage.get("total_tokens")
    if isinstance(used, int) and used > 0:
        return EmbedResponse(vectors=vectors, input_tokens=used)
    return EmbedResponse(vectors=vectors, input_tokens=estimated_tokens(call), usage_estimated=True)


class OpenAIEmbeddings(HttpProvider):
    """``embed`` for the openai-compatible provider (its settings include :class:`OpenAIEmbeddingSettings`)."""

    def embed_batch_limit(self, model: ModelSpec) -> int:
        return int(getattr(self.settings, "embedding_batch_size", OPENAI_MAX_INPUTS))

    async def embed(self, call: EmbedCall) -> EmbedResponse:
        encoding = str(getattr(self.settings, "embedding_encoding", "float"))
        url = f"{self.settings.base_url}/embeddings"
        body = embedding_body(call, encoding)
        return await post_embedding(self, call, url, body, lambda data: parse_embeddings(call, data, encoding))
