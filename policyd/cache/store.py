"""The on-disk store: a diskcache FanoutCache that holds bytes and never pickles.

diskcache pickles any value (and key) that is not a str, bytes or number, and
unpickles whatever a row says is pickled: a file planted in the cache directory
would run code on read (CVE-2025-69872). :class:`BytesDisk` accepts only ``str``
keys and ``bytes`` values and refuses to read any row stored another way, so
nothing is ever unpickled; such a row is a miss and is evicted.

Every failure of the disk (read-only, full, locked, vanished) is caught here: the
caller sees a miss or a write that did not happen, the ``io_errors`` counter goes
up and a warning is logged (at most once a minute). A directory that cannot be
opened at all makes a store that answers nothing, with the reason in the stats.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import DBNAME, MODE_BINARY, MODE_RAW

from policyd.cache.codec import CorruptEntry
from policyd.cache.rows import Row, ShardRows
from policyd.cache.settings import CacheSettings
from policyd.cache.stats import CacheStats

log = logging.getLogger(__name__)

LAYOUT_FILE = "layout.json"
WARN_EVERY_S = 60.0
SQLITE_TIMEOUT_S = 0.1
"""How long one operation on the response path waits for a shard's lock before it counts as failed."""
BATCH_LOCK_TIMEOUT_S = 2.0
"""How long the writer thread's batch waits for a shard's lock: it is off the response path, and a
batch given up is answers paid for again, so it waits out another worker's commit or a slow fsync."""
CULL_EVERY_S = 1.0


class BytesDisk(diskcache.Disk):
    """diskcache serialization restricted to ``str`` keys and ``bytes`` values."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise TypeError(f"cache keys are str, not {type(key).__name__}")
        return key, True

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise CorruptEntry("a pickled key was found; refused")
        return key

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> tuple[int, int, Any, Any]:
        if type(value) is not bytes or read:
            raise TypeError(f"cache values are bytes, not {type(value).__name__}")
        return super().store(value, False, key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> bytes:
        if mode == MODE_RAW and isinstance(value, bytes):
            return value
        if mode == MODE_BINARY and filename and not read:
            return super().fetch(mode, filename, value, False)
        raise CorruptEntry(f"stored with mode {mode}, not as bytes; refused")


@dataclass
class TenantUsage:
    entries: int = 0
    bytes: int = 0


@dataclass
class Usage:
    directory: str
    shards: int
    size_limit_bytes: int
    entries: int = 0
    bytes: int = 0
    tenants: dict[str, TenantUsage] = field(default_factory=dict)


def shard_count(directory: Path, wanted: int) -> int:
    """The shard count fixed in ``layout.json`` when the directory was created (keys map to shards by it)."""
    path = directory / LAYOUT_FILE
    try:
        fixed = json.loads(path.read_text(encoding="utf-8"))["shards"]
        if isinstance(fixed, int) and fixed >= 1:
            if fixed != wanted:
                log.warning(
                    "cache: %s has %d shards; cache.shards=%d applies to a new directory", directory, fixed, wanted
                )
            return fixed
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("cache: %s is unreadable; rewriting it with %d shards", path, wanted)
    path.write_text(json.dumps({"shards": wanted}), encoding="utf-8")
    return wanted


class ResponseStore:
    """Bytes under string keys, tagged by tenant, with a size limit and per-entry expiry."""

    def __init__(self, directory: Path, settings: CacheSettings, stats: CacheStats) -> None:
        self.directory = directory
        self.stats = stats
        self.size_limit = int(settings.size_limit_mb * 2**20)
        self.shards = settings.shards
        self._fanout: diskcache.FanoutCache | None = None
        self._opening: threading.Thread | None = None
        """Opens the shards in the background (:meth:`_open`); joined by the first use of :attr:`_cache`."""
        self.ready = True
        """False while the shards are opening: an event loop's first use waits for them in a thread
        (:meth:`wait_open`), not on the loop."""
        self._rows: dict[int, ShardRows] = {}
        """The batch writer's connections, one per shard (used from the writer thread only)."""
        self._next_cull = 0.0
        self.generation = 0
        """Bumped by every removal made through this store (clear, corrupt eviction): remembered entries go."""
        self._last_warning = -WARN_EVERY_S
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.shards = shard_count(directory, settings.shards)
        except OSError as exc:
            self._unavailable(exc)
            return
        # The shards' SQLite files (~570 statements for 8, and their syncs: 40-170 ms of wall clock in a
        # fresh directory, more while another worker creates the same files) open while the daemon
        # finishes its start: the first use waits for them (docs/deploy.md, "Start-up").
        self.ready = False
        self._opening = threading.Thread(target=self._open, name="policyd-cache-open", daemon=True)
        self._opening.start()

    def _open(self) -> None:
        try:
            self._open_shards()
        finally:
            self.ready = True

    def _open_shards(self) -> None:
        try:
            self._fanout = diskcache.FanoutCache(
                str(self.directory),
                shards=self.shards,
                timeout=SQLITE_TIMEOUT_S,
                disk=BytesDisk,
                size_limit=self.size_limit,
                tag_index=True,
                eviction_policy="least-recently-stored",
            )
        except (OSError, sqlite3.Error) as exc:
            self._unavailable(exc)
        except Exception as exc:  # in a thread: nothing else would report it
            log.exception("cache: cannot open %s", self.directory)
            self._unavailable(exc)

    def _unavailable(self, exc: BaseException) -> None:
        reason = f"cannot open {self.directory}: {getattr(exc, 'strerror', None) or exc}"
        self.stats.disabled_reason = reason
        self.stats.add("io_errors")
        log.warning("cache: %s; running without a cache", reason)

    def wait_open(self) -> None:
        """Return once the shards are open, or known not to open."""
        opening = self._opening
        if opening is not None:
            opening.join()
            self._opening = None

    @property
    def _cache(self) -> diskcache.FanoutCache | None:
        """The shards, once open (None: they cannot be); the first use waits for the opening thread."""
        self.wait_open()
        return self._fanout

    @property
    def available(self) -> bool:
        return self._cache is not None

    def _io_error(self, op: str, exc: BaseException) -> None:
        self.stats.add("io_errors")
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            log.warning("cache: %s failed in %s: %s (answers go on uncached)", op, self.directory, exc)

    def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None (absent, expired, unreadable, refused)."""
        if self._cache is None:
            return None
        try:
            value = self._cache.get(key, default=None, retry=False)
        except CorruptEntry as exc:
            self.evict_corrupt(key, str(exc))
            return None
        except (sqlite3.Error, OSError) as exc:
            self._io_error("read", exc)
            return None
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, *, expire_s: float, tenant: str) -> bool:
        if self._cache is None:
            return False
        try:
            done = bool(self._cache.set(key, value, expire=expire_s, tag=tenant, retry=False))
        except (sqlite3.Error, OSError) as exc:
            self._io_error("write", exc)
            return False
        if not done:
            self._io_error("write", TimeoutError("shard locked"))
        return done

    def set_many(self, rows: Sequence[Row]) -> int:
        """Store a batch (the writer thread's): one transaction per shard; returns how many were stored.

        Small entries go in with :class:`~policyd.cache.rows.ShardRows`; large ones (kept
        in files by diskcache) and shards of an unexpected layout through ``set``. A
        shard whose transaction fails (locked, disk full) loses its part of the batch,
        counted in ``io_errors`` like a failed ``set``.
        """
        if self._cache is None or not rows:
            return 0
        by_shard: dict[int, list[Row]] = {}
        one_by_one: list[Row] = []
        small = self._cache.disk_min_file_size
        for row in rows:
            if len(row.value) < small:
                by_shard.setdefault(self._cache.disk.hash(row.key) % self.shards, []).append(row)
            else:
                one_by_one.append(row)
        stored = 0
        now = time.time()
        for index, batch in by_shard.items():
            shard = self._shard_rows(index)
            if shard is None or not shard.usable:
                one_by_one += batch
                continue
            try:
                left = shard.write(batch, now)
            except sqlite3.Error as exc:
                self._io_error("write", exc)
                continue
            stored += len({row.key for row in batch}) - len(left)
            one_by_one += left
        stored += sum(self.set(row.key, row.value, expire_s=row.expire_s, tenant=row.tenant) for row in one_by_one)
        self._cull_now_and_then()
        return stored

    def _shard_rows(self, index: int) -> ShardRows | None:
        shard = self._rows.get(index)
        if shard is None:
            try:
                shard = self._rows[index] = ShardRows(self.directory / f"{index:03d}", BATCH_LOCK_TIMEOUT_S)
            except sqlite3.Error as exc:
                self._io_error("open", exc)
                return None
        return shard

    def shard_connection(self, index: int) -> sqlite3.Connection | None:
        """The writer thread's connection to shard ``index`` (None: unopenable or of an unexpected layout)."""
        if self._cache is None:
            return None
        shard = self._shard_rows(index)
        return shard.con if shard is not None and shard.usable else None

    def _cull_now_and_then(self) -> None:
        """Expired entries out and the size limit kept, at most once a second (``set`` culls on each call)."""
        now = time.monotonic()
        if self._cache is None or now < self._next_cull:
            return
        self._next_cull = now + CULL_EVERY_S
        # Shard by shard, each given up when locked (FanoutCache.cull retries a locked shard forever).
        for shard in getattr(self._cache, "_shards", ()):
            try:
                shard.cull(retry=False)
            except diskcache.Timeout:
                continue
            except (sqlite3.Error, OSError) as exc:
                self._io_error("cull", exc)

    def evict_corrupt(self, key: str, why: str) -> None:
        self.generation += 1
        self.stats.add("corrupt_evicted")
        log.warning("cache: evicting a corrupt entry (%s)", why)
        if self._cache is None:
            return
        try:
            self._cache.delete(key, retry=True)
        except (sqlite3.Error, OSError) as exc:
            self._io_error("evict", exc)

    def clear(self, tenant: str | None = None) -> int:
        """Remove every entry, or a tenant's; returns how many were removed."""
        self.generation += 1
        if self._cache is None:
            return 0
        if tenant is None:
            return int(self._cache.clear(retry=True))
        return int(self._cache.evict(tenant, retry=True))

    def usage(self) -> Usage:
        """Live entries and bytes, per tenant, read straight from each shard's SQLite file."""
        out = Usage(directory=str(self.directory), shards=self.shards, size_limit_bytes=self.size_limit)
        if self._cache is None:
            return out
        now = time.time()
        query = (
            "SELECT tag, COUNT(*), SUM(size + COALESCE(LENGTH(value), 0)) FROM Cache"
            " WHERE expire_time IS NULL OR expire_time > ? GROUP BY tag"
        )
        for i in range(self.shards):
            db = self.directory / f"{i:03d}" / DBNAME
            try:
                with closing(sqlite3.connect(db, timeout=1.0)) as con:
                    rows = con.execute(query, (now,)).fetchall()
            except sqlite3.Error as exc:
                self._io_error("stats", exc)
                continue
            for tag, count, size in rows:
                tenant = tag if isinstance(tag, str) else "?"
                t = out.tenants.setdefault(tenant, TenantUsage())
                t.entries += int(count)
                t.bytes += int(size or 0)
                out.entries += int(count)
                out.bytes += int(size or 0)
        return out

    def close(self) -> None:
        for shard in self._rows.values():
            shard.close()
        self._rows.clear()
        if self._cache is not None:
            self._cache.close()
