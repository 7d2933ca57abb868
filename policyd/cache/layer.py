"""The cache as a pipeline call layer: ``async (turn, call, on_delta, next) -> ModelResponse``.

Per call, by ``call.cache_mode``:

* ``default``: a stored answer is returned as ``cached=True`` (the context records
  cost 0 and the USD it saved); otherwise identical concurrent calls share one
  upstream call (followers are answered ``cached=True`` too) and the answer is
  stored after it is returned;
* ``refresh``: the upstream is called and its answer replaces the stored one;
* ``only-if-cached``: a stored answer, or :class:`~policyd.errors.NotFound` without
  calling anything;
* ``bypass``: the cache is neither read nor written (also when the plan's cache is off).

A streaming caller answered from the cache receives the stored text through
``on_delta`` at once. Only complete answers are stored: an upstream error, a
cancelled call or a broken stream raises before anything is written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from policyd.cache.codec import CorruptEntry, Entry, decode, encode_parts
from policyd.cache.keys import call_key
from policyd.cache.singleflight import SingleFlight
from policyd.cache.stats import CacheStats
from policyd.cache.store import ResponseStore
from policyd.cache.writer import BackgroundWriter, Write
from policyd.engine.pipeline import CallNext
from policyd.engine.turn import Turn
from policyd.errors import NotFound
from policyd.plugin.specs import DeltaSink
from policyd.types import CacheMode, ModelCall, ModelResponse, evolve

log = logging.getLogger(__name__)


UNSTORABLE_FINISH = frozenset({"error", "cancelled"})
RECENT_ENTRIES = 128
RECENT_MAX_BYTES = 32 * 1024
"""Bounds of the decoded-entry memo: at most 128 entries of up to 32 KiB each."""


class RecentEntries:
    """Entries decoded lately: reused while the store returns the same bytes, or without reading it
    for ``reread_after_s`` after the last read.

    Decoding and checking an entry cost about as much as reading it from disk, and a hot
    key is read over and over. The disk read itself is the dearer part in the daemon: the
    SQLite call releases the GIL, and a busy event loop then waits to get it back from the
    other threads (measured: ~200 µs of CPU per hit). So an entry read from disk is
    trusted for ``reread_after_s`` (1 s by default): within it a hit is answered from
    memory. Whatever this process changes is seen at once (a pending write is looked up
    first; clearing or evicting through the store bumps its ``generation``, which drops
    every remembered entry); another process's change (``policyd cache clear``, another
    daemon's write of the same key) is seen within ``reread_after_s``.
    """

    def __init__(self, reread_after_s: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.reread_after_s = reread_after_s
        self.clock = clock
        self._entries: dict[str, tuple[bytes, Entry, float, int]] = {}

    def fresh(self, key: str, tenant: str, generation: int) -> Entry | None:
        """The entry read from disk within ``reread_after_s`` (and since the last clear), if any."""
        known = self._entries.get(key)
        if known is None or known[3] != generation or known[1].tenant != tenant:
            return None
        return known[1] if self.clock() - known[2] < self.reread_after_s else None

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def decode(self, data: bytes, *, key: str, tenant: str, generation: int = 0) -> Entry:
        known = self._entries.get(key)
        if known is not None and known[0] == data and known[1].tenant == tenant:
            entry = known[1]
        else:
            entry = decode(data, key=key, tenant=tenant)
        if len(data) <= RECENT_MAX_BYTES:
            if key not in self._entries and len(self._entries) >= RECENT_ENTRIES:
                del self._entries[next(iter(self._entries))]  # the oldest
            self._entries[key] = (data, entry, self.clock(), generation)
        return entry


RECORDING = object()
"""The ``turn.state`` key of a :class:`Recording` (``policyd.server.replay`` records runs this way)."""


class Recording:
    """The calls of one run as the cache layer answered them: how many, and each hit's key, tenant,
    stored answer and the USD it saved."""

    __slots__ = ("calls", "hits")

    def __init__(self) -> None:
        self.calls = 0
        self.hits: list[tuple[str, str, ModelResponse, float]] = []

    @property
    def clean(self) -> bool:
        """Whether every call was a hit."""
        return len(self.hits) == self.calls


class CacheLayer:
    def __init__(
        self,
        store: ResponseStore,
        writer: BackgroundWriter,
        stats: CacheStats,
        *,
        default_ttl_s: float,
        reread_after_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.writer = writer
        self.stats = stats
        self.default_ttl_s = default_ttl_s
        self.clock = clock
        self.flights: SingleFlight[ModelResponse] = SingleFlight()
        self.recent = RecentEntries(reread_after_s)

    async def __call__(self, turn: Turn, call: ModelCall, on_delta: DeltaSink | None, next_: CallNext) -> ModelResponse:
        """The ``cache`` call layer (the Turn is passed on to the layers inside it)."""
        if not self.store.ready:  # the shards are still opening (start-up): wait in a thread, not on the loop
            await asyncio.to_thread(self.store.wait_open)
        mode = call.cache_mode
        recording: Recording | None = turn.state.get(RECORDING) if turn is not None else None  # None: unit tests
        if recording is not None:
            recording.calls += 1
        if mode is CacheMode.BYPASS or (not self.store.available and mode is not CacheMode.ONLY_IF_CACHED):
            self.stats.add("bypassed")
            return await next_(turn, call, on_delta)
        started = time.perf_counter()
        key = call_key(call)
        if mode is not CacheMode.REFRESH:
            hit = self.lookup(key, call.tenant)
            if hit is not None:
                self.stats.add("hits")
                if recording is not None:
                    recording.hits.append((key, call.tenant, hit, self._saved(call, hit)))
                return self._reuse(call, hit, on_delta, started)
            if mode is CacheMode.ONLY_IF_CACHED:
                self.stats.add("only_if_cached_misses")
                raise NotFound(
                    f"no cached answer of {call.model.id} for this call (cache_mode only-if-cached)",
                    reason="CACHE_MISS",
                    metadata={"model": call.model.id},
                )

        async def fetch(sink: DeltaSink | None) -> ModelResponse:
            self.stats.add("misses")
            response = await next_(turn, call, sink)
            if response.finish_reason not in UNSTORABLE_FINISH and not response.cached:
                self._store(key, call, response)
            return response

        if mode is CacheMode.REFRESH:
            return await fetch(on_delta)
        response, shared = await self.flights.run(key, fetch, on_delta)
        if not shared:
            return response
        self.stats.add("shared")
        return self._reuse(call, response, on_delta, started)

    def lookup(self, key: str, tenant: str) -> ModelResponse | None:
        """A live stored answer for ``key`` and ``tenant``, or None; corrupt entries are evicted."""
        data = self.writer.peek(key)
        generation = self.store.generation
        if data is None:
            entry = self.recent.fresh(key, tenant, generation)
            if entry is not None:
                return entry.response if entry.expires_at > self.clock() else None
            if not self.writer.known.maybe(key):
                return None  # never stored, by any process (as of the last sync): no disk read
            data = self.store.get(key)
        if data is None:
            return None
        try:
            entry = self.recent.decode(data, key=key, tenant=tenant, generation=generation)
        except CorruptEntry as exc:
            self.store.evict_corrupt(key, str(exc))
            return None
        if entry.expires_at <= self.clock():
            return None
        return entry.response

    def replay(self, hits: Sequence[tuple[str, str, ModelResponse, float]]) -> list[float] | None:
        """Each call of a remembered all-hit run looked up again (``policyd.server.replay``): the lookup
        times in ms when every key still holds the answer it had, counted as hits; else None, counting nothing."""
        latencies = []
        saved = 0.0
        clock = time.perf_counter
        for key, tenant, response, usd in hits:
            started = clock()
            now = self.lookup(key, tenant)
            if now is not response and now != response:
                return None
            latencies.append((clock() - started) * 1000)
            saved += usd
        self.stats.add_hits(len(hits), saved)
        return latencies

    @staticmethod
    def _saved(call: ModelCall, response: ModelResponse) -> float:
        usage = response.usage
        return call.model.cost_usd(usage.input_tokens, usage.output_tokens)

    def _reuse(
        self, call: ModelCall, response: ModelResponse, on_delta: DeltaSink | None, started: float
    ) -> ModelResponse:
        self.stats.add("saved_usd", self._saved(call, response))
        if on_delta is not None and response.message.content:
            on_delta(response.message.content)
        return evolve(response, cached=True, latency_ms=(time.perf_counter() - started) * 1000)

    def _store(self, key: str, call: ModelCall, response: ModelResponse) -> None:
        now = self.clock()
        ttl = call.cache_ttl_s or self.default_ttl_s
        tenant = call.tenant
        value = encode_parts(key, tenant, call.model.id, now, now + ttl, response)
        self.recent.forget(key)  # a refreshed answer replaces the remembered one at once
        self.writer.submit(Write(key, value, ttl, tenant, time.time()))  # the disk's clock, not ``self.clock``
