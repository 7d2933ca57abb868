"""Writes off the hot path: answers are stored by one background thread.

A diskcache set costs a fraction of a millisecond of SQLite work that the event
loop should not wait for. The layer hands the encoded entry to :meth:`submit` and
returns the answer at once; until the thread has stored it, the entry is served
from the in-memory ``pending`` map, so an identical call made in that window still
does not pay twice. The queue is bounded: when it is full the answer is not stored
(``writes_dropped``) rather than slowing callers down. :meth:`close` stores what is
queued before it returns (the daemon calls it on shutdown).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from policyd.cache.stats import CacheStats
from policyd.cache.store import ResponseStore

log = logging.getLogger(__name__)

SAVE_STATS_EVERY_S = 60.0


@dataclass(frozen=True)
class Write:
    key: str
    value: bytes
    expire_s: float
    tenant: str


class BackgroundWriter:
    def __init__(self, store: ResponseStore, stats: CacheStats, *, max_pending: int, stats_dir: Path | None) -> None:
        self.store = store
        self.stats = stats
        self.stats_dir = stats_dir
        self._queue: queue.Queue[Write | None] = queue.Queue(maxsize=max_pending)
        self._pending: dict[str, Write] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="policyd-cache-writer", daemon=True)
        self._thread.start()

    def submit(self, write: Write) -> bool:
        """Queue ``write``; False (and counted) when the queue is full or closed."""
        with self._lock:
            if self._closed:
                return False
            self._pending[write.key] = write
        try:
            self._queue.put_nowait(write)
        except queue.Full:
            with self._lock:
                if self._pending.get(write.key) is write:
                    del self._pending[write.key]
            self.stats.add("writes_dropped")
            return False
        return True

    def peek(self, key: str) -> bytes | None:
        """The value of a write not yet stored, if any."""
        with self._lock:
            write = self._pending.get(key)
        return write.value if write is not None else None

    def flush(self) -> None:
        """Block until everything queued so far is stored."""
        self._queue.join()

    def close(self) -> None:
        """Store what is queued, stop the thread and save the counters."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join()
        if self.stats_dir is not None:
            self.stats.save(self.stats_dir)

    def _run(self) -> None:
        next_save = time.monotonic() + SAVE_STATS_EVERY_S
        while True:
            if time.monotonic() >= next_save:
                next_save = time.monotonic() + SAVE_STATS_EVERY_S
                if self.stats_dir is not None:
                    self.stats.save(self.stats_dir)
            try:
                write = self._queue.get(timeout=max(0.0, next_save - time.monotonic()))
            except queue.Empty:
                continue
            try:
                if write is None:
                    return
                if self.store.set(write.key, write.value, expire_s=write.expire_s, tenant=write.tenant):
                    self.stats.add("writes")
            except Exception:
                log.exception("cache writer failed on one entry")
            finally:
                if write is not None:
                    with self._lock:
                        if self._pending.get(write.key) is write:
                            del self._pending[write.key]
                self._queue.task_done()
