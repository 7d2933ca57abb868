"""Simulated embeddings: stable, unit-length vectors computed from the text, offline.

A vector is a feature hash of the text's words and character trigrams, each feature
adding a signed weight at an index drawn from a hash seeded by the model (and the
provider's ``seed``), then normalized. So the same text always gives the same vector,
two models give unrelated vectors, and texts that share words point in similar
directions: enough to show retrieval, caching and routing work with no key.

A model that can shorten its vectors (``min_dimensions``) gives the first ``n``
components of its full vector, renormalized, as Matryoshka-trained models do.
"""

from __future__ import annotations

import array
import hashlib
import math
import re

from policyd.api import EMBEDDING_TAG, ModelSpec, model_dimensions, vector

WORD = re.compile(r"\w+", re.UNICODE)
DEFAULT_DIMENSIONS = 768
WORD_WEIGHT = 1.0
TRIGRAM_WEIGHT = 0.35


def _features(text: str) -> list[tuple[str, float]]:
    words = WORD.findall(text.lower())
    feats = [(f"w:{w}", WORD_WEIGHT) for w in words]
    for w in words:
        padded = f"^{w}$"
        feats += [(f"t:{padded[i : i + 3]}", TRIGRAM_WEIGHT) for i in range(max(1, len(padded) - 2))]
    return feats or [(f"x:{text}", 1.0)]


def full_vector(model: ModelSpec, text: str, seed: str = "") -> list[float]:
    """The model's full-length vector for ``text`` (unit length)."""
    dims = model_dimensions(model) or DEFAULT_DIMENSIONS
    values = [0.0] * dims
    salt = f"{model.upstream}\x1f{seed}\x1f".encode()
    for feature, weight in _features(text):
        digest = hashlib.blake2b(salt + feature.encode(), digest_size=16).digest()
        for k in range(0, 16, 4):  # four spread-out components per feature
            word = int.from_bytes(digest[k : k + 4], "little")
            sign = 1.0 if word & 1 else -1.0
            values[(word >> 1) % dims] += sign * weight
    return _unit(values)


def _unit(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def simulated_embedding(model: ModelSpec, text: str, dimensions: int | None, seed: str = "") -> array.array[float]:
    """``text``'s vector from ``model``, cut to ``dimensions`` (and renormalized) when asked."""
    if EMBEDDING_TAG not in model.tags:
        raise ValueError(f"{model.id} is not an embedding model")
    values = full_vector(model, text, seed)
    if dimensions is not None and dimensions < len(values):
        values = _unit(values[:dimensions])
    return vector(values)
