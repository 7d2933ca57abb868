"""The simulated provider's embeddings: stable unit vectors from the text, unrelated across models."""

from __future__ import annotations

import math

import pytest
from policyd_plugins.simulated.embedding_catalog import EMBEDDING_MODELS
from policyd_plugins.simulated.embeddings import simulated_embedding
from policyd_plugins.simulated.provider import SimulatedProvider, SimulatedSettings

from policyd.api import EmbedCall

MODELS = {m.id: m for m in EMBEDDING_MODELS}


def dot(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_vectors_are_deterministic_unit_length_and_similar_for_similar_texts():
    nomic = MODELS["nomic-embed-text-v1.5"]
    a = simulated_embedding(nomic, "routing embeddings by policy", None)
    assert a == simulated_embedding(nomic, "routing embeddings by policy", None)
    assert len(a) == 768 and math.isclose(dot(a, a), 1.0, rel_tol=1e-5)
    near = simulated_embedding(nomic, "routing the embeddings by a policy", None)
    far = simulated_embedding(nomic, "the weather in Lisbon", None)
    assert dot(a, near) > 0.6 > dot(a, far)


def test_another_model_or_a_shorter_length_gives_another_vector():
    nomic, bge = MODELS["nomic-embed-text-v1.5"], MODELS["bge-m3"]
    a = simulated_embedding(nomic, "same text", None)
    b = simulated_embedding(bge, "same text", None)
    assert len(b) == 1024
    short = simulated_embedding(nomic, "same text", 64)
    assert len(short) == 64 and math.isclose(dot(short, short), 1.0, rel_tol=1e-5)
    norm = math.sqrt(dot(a[:64], a[:64]))  # a Matryoshka cut of the same vector, renormalized
    assert all(math.isclose(s, x / norm, rel_tol=1e-4, abs_tol=1e-6) for s, x in zip(short, a[:64], strict=True))
    assert b[:768] != a


def test_every_catalog_embedding_model_has_a_length_license_and_price():
    for model in EMBEDDING_MODELS:
        assert model.options["dimensions"] > 0 and model.license and model.input_usd_per_mtok >= 0
        assert model.local == (model.input_usd_per_mtok == 0.0)


@pytest.mark.parametrize("count", [1, 5])
async def test_the_provider_answers_one_vector_per_text_with_usage(count: int):
    provider = SimulatedProvider("simulated", SimulatedSettings(latency_scale=0))
    resp = await provider.embed(EmbedCall(MODELS["bge-m3"], tuple(f"text {i}" for i in range(count))))
    assert len(resp.vectors) == count and resp.input_tokens == 2 * count
