"""Writes off the hot path: answers are stored by one background thread, in batches.

A diskcache set costs a fraction of a millisecond of SQLite work that the event
loop should not wait for. The layer hands the encoded entry to :meth:`submit` and
returns the answer at once; until the thread has stored it, the entry is served
from the in-memory ``pending`` map, so an identical call made in that window still
does not pay twice. The thread gathers what arrives within ``BATCH_WAIT_S`` (50 ms)
of the first write, or the first ``BATCH_ROWS`` (256) writes, and stores it with one transaction per shard
(:meth:`ResponseStore.set_many`): one wake-up and a few GIL hand-offs per batch
instead of seven SQL statements, each a GIL hand-off with the event loop, per answer.
The queue is bounded (``max_pending`` entries, queued or being stored): when it is
full the answer is not stored (``writes_dropped``) rather than slowing callers down.
:meth:`flush` stores at once and waits; :meth:`close` stores what is queued before it
returns (the daemon calls it on shutdown). The thread also keeps :attr:`known` (the keys
on disk, :mod:`policyd.cache.presence`) in step with what other processes store.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import NamedTuple

from policyd.cache.presence import KnownKeys
from policyd.cache.stats import CacheStats
from policyd.cache.store import ResponseStore

log = logging.getLogger(__name__)

SAVE_STATS_EVERY_S = 60.0
BATCH_WAIT_S = 0.05
"""How long the thread gathers writes after the first one before storing them as one batch. Each batch
commits once per shard, a fixed ~40 µs of SQLite and WAL work each whatever its rows: 20 ms gathered
~30 answers at 1,500 req/s for 8 commits, so the commits, not the rows, were most of the writer's cost."""
BATCH_ROWS = 256
"""A batch this long is stored at once, without waiting out ``BATCH_WAIT_S``."""


class Write(NamedTuple):
    """One entry to store (a tuple: made on the event loop for every miss, cheaper than a frozen dataclass)."""

    key: str
    value: bytes
    expire_s: float
    tenant: str
    made_at: float = 0.0
    """When the answer was made (``time.time()``); 0: when its batch is stored. Of two writes of one
    key that reach the disk out of order (two workers), the one made later stays."""


class BackgroundWriter:
    def __init__(
        self,
        store: ResponseStore,
        stats: CacheStats,
        *,
        max_pending: int,
        stats_dir: Path | None,
        batch_wait_s: float = BATCH_WAIT_S,
        batch_rows: int = BATCH_ROWS,
        known_fresh_for_s: float = 0.0,
    ) -> None:
        self.store = store
        self.stats = stats
        self.stats_dir = stats_dir
        self.max_pending = max_pending
        self.batch_wait_s = batch_wait_s
        self.batch_rows = batch_rows
        self._queue: list[Write] = []
        """Submitted, not yet taken by the thread (at most ``max_pending`` with those being stored)."""
        self._pending: dict[str, Write] = {}
        self._writing = 0
        self._cv = threading.Condition()
        self._urgent = 0
        """Callers of :meth:`flush` waiting: the thread stores at once instead of gathering a batch."""
        self._closed = False
        self._sync = False
        """A lookup asked for :attr:`known` to be synced with the disk."""
        # Not ``store.available``: that waits for the shards, which open while the daemon starts. A store
        # that cannot open is bypassed by the cache layer, and this filter is never complete on it.
        self.known = KnownKeys(store.shards, known_fresh_for_s, self.request_sync)
        self._thread = threading.Thread(target=self._run, name="policyd-cache-writer", daemon=True)
        self._thread.start()

    def submit(self, write: Write) -> bool:
        """Queue ``write``; False (and counted) when the queue is full or closed."""
        with self._cv:
            if self._closed:
                return False
            if len(self._queue) + self._writing >= self.max_pending:
                self.stats.add("writes_dropped")
                return False
            self._pending[write.key] = write
            self._queue.append(write)
            queued = len(self._queue)
            if queued == 1 or queued == self.batch_rows:
                self._cv.notify()  # starts the batch's clock, or ends it
        return True

    def peek(self, key: str) -> bytes | None:
        """The value of a write not yet stored, if any."""
        write = self._pending.get(key)  # one dict read: atomic under the GIL
        return write.value if write is not None else None

    def request_sync(self) -> None:
        """Have the thread read the keys other processes stored into :attr:`known`."""
        with self._cv:
            self._sync = True
            self._cv.notify()

    def flush(self) -> None:
        """Block until everything submitted so far is stored."""
        with self._cv:
            self._urgent += 1
            self._cv.notify_all()
            try:
                while self._queue or self._writing:
                    self._cv.wait()
            finally:
                self._urgent -= 1

    def close(self) -> None:
        """Store what is queued, stop the thread and save the counters."""
        with self._cv:
            if self._closed:
                return
            self._closed = True
            self._cv.notify_all()
        self._thread.join()
        self._save_stats()

    def _save_stats(self) -> None:
        """The counters into ``stats_dir``, when the store there could be opened."""
        if self.stats_dir is not None and self.store.available:
            self.stats.save(self.stats_dir)

    def _take(self, next_save: float) -> list[Write] | None:
        """The next batch: what was queued within ``batch_wait_s`` of its first write ([] to save stats)."""
        with self._cv:
            while not self._queue:
                if self._closed:
                    return None
                if self._sync:
                    return []
                if not self._cv.wait(max(0.0, next_save - time.monotonic())):
                    return []
            deadline = time.monotonic() + self.batch_wait_s
            while (
                not (self._closed or self._urgent)
                and len(self._queue) < self.batch_rows
                and (wait := deadline - time.monotonic()) > 0
            ):
                self._cv.wait(wait)
            batch, self._queue = self._queue, []
            self._writing = len(batch)
            return batch

    def _run(self) -> None:
        next_save = time.monotonic() + SAVE_STATS_EVERY_S
        while (batch := self._take(next_save)) is not None:
            if time.monotonic() >= next_save:
                next_save = time.monotonic() + SAVE_STATS_EVERY_S
                self._save_stats()
            if batch:
                self._store(batch)
            if self._sync:
                self._sync = False
                try:
                    self.known.sync(self.store.shard_connection)
                except Exception:
                    log.exception("cache writer failed to read the keys on disk")

    def _store(self, batch: list[Write]) -> None:
        try:
            stored = self.store.set_many(batch)
            if stored:
                self.stats.add("writes", stored)
        except Exception:
            log.exception("cache writer failed on a batch of %d entries", len(batch))
        finally:
            # Known before they leave the pending map, where lookups found them so far.
            self.known.add_all([write.key for write in batch])
            with self._cv:
                for write in batch:
                    if self._pending.get(write.key) is write:
                        del self._pending[write.key]
                self._writing = 0
                self._cv.notify_all()
