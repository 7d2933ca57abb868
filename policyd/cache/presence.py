"""Which keys the disk may hold: a miss answered without reading the disk.

With the default config every new prompt is a miss, and a miss paid a SQLite read:
a call that releases the GIL, so the busy event loop then waits to get it back from
the other threads (measured in the daemon: ~90 µs of CPU per request). :class:`KnownKeys`
is a Bloom filter of the keys stored in the cache directory, by any process; a key it
has never seen is not on disk, and the read is skipped.

It never serves wrong data: it only ever says "absent" (skip the read, call the model)
or "maybe" (read the disk as before, which decides). A false "maybe" costs the read it
would have cost anyway. A false "absent" costs one extra upstream call (at most one per process and key: the
answer this process then stores is known to it), and can only happen for a key another
process stored less than ``reread_after_s`` ago (1 s by default, the window in which the
cache already sees other processes' changes), in practice less than 0.1 s ago:

* the keys this process stores are added by the writer thread once their batch is stored,
  before they leave its pending map (where lookups find them until then);
* the cache writer thread reads the keys other processes stored (each shard's rows past
  the newest ``rowid`` it has read, on the primary key) every 0.1 s while lookups come
  (:data:`SYNC_EVERY_S`): the usual window is that; a lookup on a filter not synced within
  ``reread_after_s`` reads the disk. A shard no other connection committed to since it was
  last read (its ``PRAGMA data_version`` is the same) is not read again: a daemon alone on
  its directory reads nothing back;
* ``rowid`` values only grow while the newest row stays: the sync checks that the newest
  row it read still holds the same key, and reads the whole shard again when it does not
  (after ``policyd cache clear``, an eviction of the newest entry), so rows given a
  ``rowid`` again are not missed (unless the very same key lands again on the very same
  ``rowid`` after other rows were removed and stored in between).

The filter has a fixed size (1 MiB, 4 bits a key): its false "maybe" rate stays under
0.3 % up to 500 k keys. It is rebuilt from disk once a million keys were added, which
also drops the keys evicted since. ``reread_after_s: 0`` turns it off (every miss reads).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

BITS = 1 << 23
"""Bits of the filter (1 MiB)."""
HASHES = 4
"""Bits set per key (``_bits_of``)."""
SYNC_EVERY_S = 0.1
"""How often lookups ask the writer thread to read the keys other processes stored (at most
half of ``reread_after_s``): the usual window of a duplicate upstream call across processes."""
REBUILD_AFTER = 1_000_000
SCAN_CHUNK = 1000
"""Keys added since the last build after which the filter is built again from disk."""

_MASK = BITS - 1


def _bits_of(key: str) -> tuple[int, int, int, int]:
    """The filter's bits for ``key``: double hashing of the str's own 64-bit hash (cached on the str)."""
    h = hash(key) & 0xFFFFFFFFFFFFFFFF
    a, b = h & 0xFFFFFFFF, (h >> 32) | 1
    return a & _MASK, (a + b) & _MASK, (a + 2 * b) & _MASK, (a + 3 * b) & _MASK


class Bloom:
    """A fixed-size Bloom filter of strings: ``key in bloom`` is False only for keys never added."""

    __slots__ = ("bits", "count")

    def __init__(self) -> None:
        self.bits = bytearray(BITS // 8)
        self.count = 0

    def add(self, key: str) -> None:
        bits = self.bits
        for p in _bits_of(key):
            bits[p >> 3] |= 1 << (p & 7)
        self.count += 1

    def add_all(self, keys: list[str]) -> None:
        for key in keys:
            self.add(key)

    def __contains__(self, key: str) -> bool:
        # ``_bits_of`` unrolled, stopping at the first clear bit (a new key's first, nearly always):
        # it runs on the event loop for every miss.
        h = hash(key) & 0xFFFFFFFFFFFFFFFF
        p, step = h & 0xFFFFFFFF, (h >> 32) | 1
        bits = self.bits
        for _ in range(HASHES):
            q = p & _MASK
            if not bits[q >> 3] & (1 << (q & 7)):
                return False
            p += step
        return True


Connect = Callable[[int], "sqlite3.Connection | None"]
"""A connection to shard ``i`` (the writer thread's own), or None when it cannot be opened."""


@dataclass
class _Mark:
    """The newest row read from a shard: where the next sync starts, and the proof it is still there."""

    rowid: int = 0
    key: str = ""


class KnownKeys:
    """The keys on disk, as far as this process knows; see the module docstring.

    :meth:`maybe` runs on the event loop; :meth:`sync` and :meth:`add_all` in the cache writer
    thread. Adds go through one lock (a bit set is a read-modify-write).
    """

    def __init__(
        self,
        shards: int,
        fresh_for_s: float,
        request_sync: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shards = shards
        self.fresh_for_s = fresh_for_s
        self.request_sync = request_sync
        self.clock = clock
        self.enabled = fresh_for_s > 0
        self.sync_every_s = min(SYNC_EVERY_S, fresh_for_s / 2)
        self._bloom = Bloom()
        self._lock = threading.Lock()
        self._marks = [_Mark() for _ in range(shards)]
        self._versions: list[int | None] = [None] * shards
        """Each shard's ``PRAGMA data_version`` when it was last read (None: never)."""
        self._synced_at: float | None = None
        """When the last complete sync began (None: never; lookups read the disk)."""
        self._next_ask = 0.0
        self._rebuilding: list[str] | None = None
        """Keys added while a rebuild reads the disk (added to the new filter too)."""

    @property
    def synced_at(self) -> float | None:
        """When the last complete sync began (on :attr:`clock`), or None before the first."""
        return self._synced_at

    def maybe(self, key: str) -> bool:
        """False only when ``key`` is not on disk (as of a sync begun within ``fresh_for_s``)."""
        if not self.enabled:
            return True
        synced = self._synced_at
        now = self.clock()
        if now >= self._next_ask and (synced is None or now - synced >= self.sync_every_s):
            self._next_ask = now + self.sync_every_s
            self.request_sync()
        if synced is None or now - synced >= self.fresh_for_s:
            return True
        return key in self._bloom

    def add_all(self, keys: list[str]) -> None:
        """Keys this process stored (the writer thread's, once their batch is stored)."""
        if not self.enabled:
            return
        with self._lock:
            self._bloom.add_all(keys)
            if self._rebuilding is not None:
                self._rebuilding += keys

    def sync(self, connect: Connect) -> bool:
        """Read the keys stored since the last sync (by any process) into the filter; True when complete.

        A failed shard (unreadable, locked) leaves the filter stale: lookups keep reading the disk."""
        if not self.enabled:
            return True
        began = self.clock()
        if self._bloom.count >= REBUILD_AFTER:
            return self._rebuild(connect, began)
        complete = True
        for shard in range(self.shards):
            con = connect(shard)
            try:
                if con is None:
                    complete = False
                    continue
                version = data_version(con)
                if version == self._versions[shard]:
                    continue  # no other connection committed since the last read: nothing new
                self._marks[shard] = read_since(con, self._marks[shard], self._add_all)
                self._versions[shard] = version
            except sqlite3.Error:
                complete = False
        if complete:
            self._synced_at = began
        return complete

    def _add_all(self, keys: list[str]) -> None:
        with self._lock:
            self._bloom.add_all(keys)

    def _rebuild(self, connect: Connect, began: float) -> bool:
        """A new filter from every shard (keys evicted since the last build drop out)."""
        with self._lock:
            self._rebuilding = []
        fresh, marks = Bloom(), [_Mark() for _ in range(self.shards)]
        versions: list[int | None] = [None] * self.shards
        try:
            for shard in range(self.shards):
                con = connect(shard)
                if con is None:
                    return False  # the old filter stays: it holds every key the new one would
                versions[shard] = data_version(con)
                marks[shard] = read_since(con, marks[shard], fresh.add_all)
        except sqlite3.Error:
            return False
        finally:
            with self._lock:
                added, self._rebuilding = self._rebuilding or [], None
        with self._lock:
            for key in added:
                fresh.add(key)
            self._bloom, self._marks, self._versions = fresh, marks, versions
        self._synced_at = began
        return True


def data_version(con: sqlite3.Connection) -> int:
    """The shard's ``PRAGMA data_version`` on ``con``: it changes when another connection (another
    process, this process's diskcache culling or clearing) commits, not when ``con`` itself writes."""
    row = con.execute("PRAGMA data_version").fetchone()
    return int(row[0])


def read_since(con: sqlite3.Connection, mark: _Mark, sink: Callable[[list[str]], None]) -> _Mark:
    """Give ``sink`` the keys of the ``Cache`` rows stored after ``mark`` (in chunks); the new mark.

    One read transaction. When the marked row is gone or holds another entry, the newest
    rows were removed (and their ``rowid`` values may be given again): the whole shard is read."""
    con.execute("BEGIN")
    try:
        if mark.rowid:
            # The same key at the same rowid: still there (an answer stored again is updated in place).
            # Another key, or none: removed; a rowid given again would hide the rows stored since.
            row = con.execute("SELECT key FROM Cache WHERE rowid = ?", (mark.rowid,)).fetchone()
            if row is None or row[0] != mark.key:
                mark = _Mark()
        cursor = con.execute("SELECT rowid, key FROM Cache WHERE rowid > ? ORDER BY rowid", (mark.rowid,))
        while rows := cursor.fetchmany(SCAN_CHUNK):
            sink([key for _, key in rows if isinstance(key, str)])
            rowid, key = rows[-1]
            mark = _Mark(rowid, key if isinstance(key, str) else "")
    finally:
        con.execute("COMMIT")
    return mark
