"""Embedding models of the bundled catalog, with list prices, vector lengths and licenses.

Prices are USD per 1M input tokens as published on 2025-09-01 (``source``); open-weight
models are self-hosted (vLLM, Ollama, llama.cpp or TEI behind an OpenAI-compatible
``/v1/embeddings``) and carry no per-token price. ``options.dimensions`` is the model's
own vector length; ``options.min_dimensions`` is set when the model can shorten its vectors
(OpenAI's ``dimensions``, Gemini's ``outputDimensionality``, Matryoshka-trained models).
The simulated provider serves them all offline.
"""

from __future__ import annotations

from policyd.api import EMBEDDING_TAG, ModelSpec


def _e(
    id: str,
    upstream: str,
    usd_per_mtok: float,
    context: int,
    license: str,
    dimensions: int,
    *,
    min_dimensions: int | None = None,
    local: bool = False,
    source: str,
) -> ModelSpec:
    options: dict[str, object] = {"dimensions": dimensions, "source": source}
    if min_dimensions is not None:
        options["min_dimensions"] = min_dimensions
    return ModelSpec(
        id=id,
        provider="simulated",
        upstream=upstream,
        input_usd_per_mtok=usd_per_mtok,
        output_usd_per_mtok=0.0,
        context_window=context,
        license=license,
        tags=frozenset({EMBEDDING_TAG}),
        local=local,
        options=options,
    )


EMBEDDING_MODELS: tuple[ModelSpec, ...] = (
    # ---- open weights, self-hosted
    _e(
        "nomic-embed-text-v1.5",
        "nomic-ai/nomic-embed-text-v1.5",
        0.0,
        8192,
        "apache-2.0",
        768,
        min_dimensions=64,
        local=True,
        source="huggingface.co/nomic-ai/nomic-embed-text-v1.5 (Matryoshka 64-768)",
    ),
    _e(
        "bge-m3",
        "BAAI/bge-m3",
        0.0,
        8192,
        "mit",
        1024,
        local=True,
        source="huggingface.co/BAAI/bge-m3",
    ),
    _e(
        "bge-large-en-v1.5",
        "BAAI/bge-large-en-v1.5",
        0.0,
        512,
        "mit",
        1024,
        local=True,
        source="huggingface.co/BAAI/bge-large-en-v1.5",
    ),
    _e(
        "gte-large-en-v1.5",
        "Alibaba-NLP/gte-large-en-v1.5",
        0.0,
        8192,
        "apache-2.0",
        1024,
        local=True,
        source="huggingface.co/Alibaba-NLP/gte-large-en-v1.5",
    ),
    # ---- hosted
    _e(
        "text-embedding-3-small",
        "text-embedding-3-small",
        0.02,
        8191,
        "proprietary",
        1536,
        min_dimensions=1,
        source="openai.com/api/pricing (text-embedding-3-small)",
    ),
    _e(
        "text-embedding-3-large",
        "text-embedding-3-large",
        0.13,
        8191,
        "proprietary",
        3072,
        min_dimensions=1,
        source="openai.com/api/pricing (text-embedding-3-large)",
    ),
    _e(
        "gemini-embedding-001",
        "gemini-embedding-001",
        0.15,
        2048,
        "proprietary",
        3072,
        min_dimensions=128,
        source="ai.google.dev/gemini-api/docs/pricing (gemini-embedding-001)",
    ),
)
