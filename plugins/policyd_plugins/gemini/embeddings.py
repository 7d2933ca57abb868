"""Gemini's ``models/{model}:embedContent`` (one text) and ``:batchEmbedContents`` (up to 100).

Request: ``{"content": {"parts": [{"text"}]}, "outputDimensionality"?, "taskType"?}``, and for
a batch ``{"requests": [that, with "model": "models/{model}"] }``. Answer: ``embedding.values``
or ``embeddings[i].values``, in order. Gemini reports no token usage for embeddings, so the
input tokens are estimated (and flagged). Vectors shorter than the model's 3072 are not
unit length as Gemini returns them; normalize before a dot product.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from policyd.api import EmbedCall, EmbedResponse, ModelSpec
from policyd_plugins.http import HttpProvider
from policyd_plugins.http.embed import estimated_tokens, floats, post_embedding

GEMINI_MAX_BATCH = 100


class GeminiEmbeddingSettings(BaseModel):
    embedding_batch_size: int = Field(default=GEMINI_MAX_BATCH, ge=1, le=GEMINI_MAX_BATCH)
    """Texts per ``batchEmbedContents`` request (the API takes at most 100)."""
    embedding_task_type: str | None = None
    """Gemini's ``taskType`` (``RETRIEVAL_DOCUMENT``, ``RETRIEVAL_QUERY``, ``SEMANTIC_SIMILARITY``...); None: unset."""


def _one(call: EmbedCall, text: str, model: str | None, task_type: str | None) -> dict[str, Any]:
    req: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
    if model is not None:
        req["model"] = model
    if call.dimensions is not None:
        req["outputDimensionality"] = call.dimensions
    if task_type:
        req["taskType"] = task_type
    return req


def embedding_request(call: EmbedCall, task_type: str | None) -> tuple[str, dict[str, Any]]:
    """``(method, body)``: embedContent for one text, batchEmbedContents for more."""
    if len(call.texts) == 1:
        return "embedContent", _one(call, call.texts[0], None, task_type)
    name = f"models/{call.model.upstream.removeprefix('models/')}"
    return "batchEmbedContents", {"requests": [_one(call, t, name, task_type) for t in call.texts]}


def parse_embeddings(call: EmbedCall, data: Mapping[str, Any]) -> EmbedResponse:
    items = [data["embedding"]] if "embedding" in data else data["embeddings"]
    vectors = tuple(floats(item["values"]) for item in items)
    return EmbedResponse(vectors=vectors, input_tokens=estimated_tokens(call), usage_estimated=True)


class GeminiEmbeddings(HttpProvider):
    """``embed`` for the gemini provider (its settings include :class:`GeminiEmbeddingSettings`)."""

    def embed_batch_limit(self, model: ModelSpec) -> int:
        return int(getattr(self.settings, "embedding_batch_size", GEMINI_MAX_BATCH))

    async def embed(self, call: EmbedCall) -> EmbedResponse:
        s = self.settings
        method, body = embedding_request(call, getattr(s, "embedding_task_type", None))
        version = getattr(s, "api_version", "v1beta")
        url = f"{s.base_url}/{version}/models/{call.model.upstream.removeprefix('models/')}:{method}"
        return await post_embedding(self, call, url, body, lambda data: parse_embeddings(call, data))
