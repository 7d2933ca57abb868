"""The per-text embedding cache: float32 bytes on a real diskcache directory, per tenant and model."""

from __future__ import annotations

import array
from pathlib import Path

from policyd.cache.embeddings import EmbeddingCache, embedding_key
from policyd.cache.settings import CacheSettings
from policyd.cache.stats import CacheStats
from policyd.cache.store import ResponseStore
from policyd.embedding import EMBEDDING_TAG
from policyd.types import ModelSpec

MODEL = ModelSpec(
    id="m",
    provider="p",
    upstream="u",
    input_usd_per_mtok=0.1,
    output_usd_per_mtok=0.0,
    context_window=512,
    license="mit",
    tags=frozenset({EMBEDDING_TAG}),
    options={"dimensions": 3},
)


def store(tmp_path: Path) -> ResponseStore:
    return ResponseStore(tmp_path / "cache", CacheSettings(), CacheStats())


async def test_vectors_round_trip_as_raw_float32_bytes_and_survive_a_reopen(tmp_path: Path):
    cache = EmbeddingCache(store(tmp_path), default_ttl_s=60)
    vec = array.array("f", [0.25, -0.5, 1.0])
    await cache.put_many("t", MODEL, 3, [("hello", vec)], None)
    await cache.flush()
    cache.store.close()
    reopened = EmbeddingCache(store(tmp_path), default_ttl_s=60)
    raw = reopened.store.get(embedding_key("t", MODEL, 3, "hello"))
    assert raw == vec.tobytes() and len(raw) == 12  # no pickle, no header: 4 bytes a component
    assert await reopened.get_many("t", MODEL, 3, ["hello", "other"]) == [vec, None]
    assert await reopened.get_many("another-tenant", MODEL, 3, ["hello"]) == [None]
    assert await reopened.get_many("t", MODEL, 2, ["hello"]) == [None]  # another length is another key


async def test_a_value_of_the_wrong_length_is_a_miss_and_is_evicted(tmp_path: Path):
    cache = EmbeddingCache(store(tmp_path), default_ttl_s=60)
    key = embedding_key("t", MODEL, 3, "hello")
    cache.store.set(key, b"\x00" * 5, expire_s=60, tenant="t")
    assert await cache.get_many("t", MODEL, 3, ["hello"]) == [None]
    assert cache.store.get(key) is None
    assert cache.store.stats.snapshot().corrupt_evicted == 1


def test_the_text_is_not_in_the_key():
    key = embedding_key("t", MODEL, 3, "a secret sentence")
    assert "secret" not in key and key.startswith("emb1:")
