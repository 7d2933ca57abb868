"""The per-text embedding cache: one entry per (tenant, model, dimensions, text), float32 bytes.

Embeddings are deterministic per model, so every text is cached on its own: a batch
whose texts were mostly seen before pays only for the new ones. Entries live in the
response cache's store (same directory, size limit, tenant tags and ``policyd cache
clear``), under keys of their own:

    emb1:<sha256 of [tenant, provider, model id, upstream name, dimensions, text]>

The text appears in no key. A value is the vector's raw little-endian float32 bytes
(4 bytes a component), nothing else: no pickle, no JSON. A value whose length is not
``4 * dimensions`` is refused, evicted and counted as corrupt (a miss).

Writes of one batch are one task on a worker thread, off the request path; until it
has stored them they are served from memory, so an identical text in the next request
does not pay twice. Reads of one batch take one trip to a worker thread.
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import json
import sys
from collections.abc import Sequence

from policyd.cache.store import ResponseStore
from policyd.cache.writer import Write
from policyd.embedding import vector
from policyd.types import ModelSpec

KEY_PREFIX = "emb1:"


def embedding_key(tenant: str, model: ModelSpec, dimensions: int, text: str) -> str:
    ident = json.dumps([tenant, model.provider, model.id, model.upstream, dimensions, text], ensure_ascii=False)
    return KEY_PREFIX + hashlib.sha256(ident.encode()).hexdigest()


def encode(vec: array.array[float]) -> bytes:
    if sys.byteorder == "big":
        vec = array.array("f", vec)
        vec.byteswap()
    return vec.tobytes()


def decode(data: bytes, dimensions: int) -> array.array[float] | None:
    """The vector, or None when ``data`` is not ``dimensions`` float32 values."""
    if len(data) != 4 * dimensions:
        return None
    vec = vector(data)
    if sys.byteorder == "big":
        vec.byteswap()
    return vec


class EmbeddingCache:
    """:class:`policyd.engine.embed.VectorCache` over the response cache's store and writer."""

    def __init__(self, store: ResponseStore, default_ttl_s: float) -> None:
        self.store = store
        self.default_ttl_s = default_ttl_s
        self._pending: dict[str, bytes] = {}
        """Values whose write has not finished yet."""
        self._writes: set[asyncio.Task[None]] = set()

    async def get_many(
        self, tenant: str, model: ModelSpec, dimensions: int, texts: Sequence[str]
    ) -> list[array.array[float] | None]:
        keys = [embedding_key(tenant, model, dimensions, t) for t in texts]
        return await asyncio.to_thread(self._read, keys, dimensions)

    def _read(self, keys: list[str], dimensions: int) -> list[array.array[float] | None]:
        out: list[array.array[float] | None] = []
        for key in keys:
            data = self._pending.get(key)
            if data is None:
                data = self.store.get(key)
            vec = None if data is None else decode(data, dimensions)
            if data is not None and vec is None:
                self.store.evict_corrupt(key, f"{len(data)} bytes for {dimensions} float32 values")
            out.append(vec)
        return out

    async def put_many(
        self,
        tenant: str,
        model: ModelSpec,
        dimensions: int,
        items: Sequence[tuple[str, array.array[float]]],
        ttl_s: float | None,
    ) -> None:
        """Store the vectors in the background; returns at once."""
        expire = ttl_s or self.default_ttl_s
        writes = [
            Write(embedding_key(tenant, model, dimensions, text), encode(vec), expire, tenant)
            for text, vec in items
            if len(vec) == dimensions  # an upstream that ignored the asked length: not this key's vector
        ]
        if not writes:
            return
        for w in writes:
            self._pending[w.key] = w.value
        task = asyncio.create_task(asyncio.to_thread(self._write, writes))
        self._writes.add(task)
        task.add_done_callback(lambda t: self._done(t, writes))

    def _write(self, writes: list[Write]) -> None:
        for w in writes:
            self.store.set(w.key, w.value, expire_s=w.expire_s, tenant=w.tenant)

    def _done(self, task: asyncio.Task[None], writes: list[Write]) -> None:
        self._writes.discard(task)
        for w in writes:
            if self._pending.get(w.key) is w.value:
                del self._pending[w.key]

    async def flush(self) -> None:
        """Wait for the writes in flight (shutdown, tests, benchmarks)."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
