"""Batched writes into diskcache's shards: one statement per shard per batch.

A diskcache ``set`` runs about seven SQL statements (begin, look-up, insert, three for
culling, commit). Each one releases the GIL while SQLite works, and in a daemon whose
event loop keeps the GIL busy every release is a hand-off between the writer thread
and the loop: two context switches per statement. Measured in the daemon, storing one
answer that way cost ~210 µs of the writer thread's CPU and ~280 µs more of the event
loop's, against ~66 µs for the same ``set`` alone.

:class:`ShardRows` writes a batch of small entries into their shards with one
multi-row ``INSERT ... ON CONFLICT DO UPDATE`` per shard (one transaction), in
exactly the rows ``diskcache.Cache.set`` would write (diskcache's own triggers keep its
count and size settings right, its indexes stay as they are), and culls each shard at
most once a second instead of on every set. It is used only when a shard's table has
the columns it expects (``PRAGMA table_info``); otherwise, and for entries diskcache
would keep in files of their own, the store falls back to ``set``. SQLite's WAL makes
each batch atomic: a ``kill -9`` loses the batch in flight, never the cache.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from diskcache.core import DBNAME, MODE_RAW

from policyd import sqlbatch

EXPECTED_COLUMNS = (
    "rowid", "key", "raw", "store_time", "expire_time", "access_time", "access_count", "tag", "size", "mode",
    "filename", "value",
)  # fmt: skip
"""diskcache 5's Cache table, in order."""
COLUMNS = "key, raw, store_time, expire_time, access_time, access_count, tag, size, mode, filename, value"
ROW = "(?, 1, ?, ?, ?, 0, ?, 0, ?, NULL, ?)"
"""A ``str`` key (raw), an inline ``bytes`` value: what ``BytesDisk`` stores below the file size."""
UPSERT_SET = (
    "store_time = excluded.store_time, expire_time = excluded.expire_time, access_time = excluded.access_time,"
    " access_count = 0, tag = excluded.tag, size = 0, mode = excluded.mode, filename = NULL, value = excluded.value"
)
UPSERT_WHEN = "Cache.filename IS NULL AND excluded.store_time >= Cache.store_time"
"""A row whose value is in a file is diskcache's to replace (:meth:`ShardRows.write`); an answer made
before the one stored does not replace it: two workers that answered one key (a REFRESH, say) may
commit in either order, and the later answer stays."""
ROWS_PER_STATEMENT = 128
"""7 parameters a row: far below SQLite's limit of 32766 bound parameters. A power of two:
statements come in :mod:`policyd.sqlbatch`'s bounded sizes, so a shard's connection keeps
8 of each prepared, not one per batch length."""


class Row(Protocol):
    """One entry to store (``policyd.cache.writer.Write``)."""

    @property
    def key(self) -> str: ...
    @property
    def value(self) -> bytes: ...
    @property
    def expire_s(self) -> float: ...
    @property
    def tenant(self) -> str: ...
    @property
    def made_at(self) -> float: ...


class ShardRows:
    """The writer thread's own connection to one shard (made in that thread, used only there)."""

    def __init__(self, directory: Path, timeout_s: float) -> None:
        self.path = directory / DBNAME
        self.con = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
        self.con.execute("PRAGMA synchronous = 1")  # NORMAL, as diskcache sets it (WAL: durable at checkpoints)
        columns = tuple(row[1] for row in self.con.execute("PRAGMA table_info(Cache)"))
        self.usable = columns == EXPECTED_COLUMNS

    def write(self, rows: Sequence[Row], now: float) -> list[Row]:
        """Store ``rows`` (last one wins per key) atomically; returns those left for ``set``.

        Each row's ``store_time`` is when its answer was made (``made_at``, else ``now``);
        a key already stored by an answer made later keeps it (:data:`UPSERT_WHEN`).
        Left over: keys whose current row keeps its value in a file (diskcache must
        remove that file): the upsert leaves such a row as it is, and only when it
        changed fewer rows than it was given are they looked up. A batch that fits one
        statement is one statement, atomic on its own (no BEGIN and COMMIT: each
        statement is a GIL hand-off with the event loop). Raises ``sqlite3.Error`` when
        the write failed (nothing stored).
        """
        latest = {row.key: row for row in rows}
        here = [
            (key, at, at + row.expire_s, at, row.tenant, MODE_RAW, row.value)
            for key, row in latest.items()
            for at in (row.made_at or now,)
        ]
        parts = list(sqlbatch.chunks(here, ROWS_PER_STATEMENT))
        con = self.con
        several = len(parts) > 1
        if several:
            con.execute("BEGIN IMMEDIATE")
        try:
            changed = 0
            for size, params in parts:
                changed += con.execute(
                    f"INSERT INTO Cache({COLUMNS}) VALUES {', '.join([ROW] * size)}"
                    f" ON CONFLICT(key, raw) DO UPDATE SET {UPSERT_SET} WHERE {UPSERT_WHEN}",
                    params,
                ).rowcount
            in_files = [] if changed >= len(here) else self._in_files(list(latest))
            if several:
                con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        return [latest[key] for key in in_files]

    def _in_files(self, keys: list[str]) -> list[str]:
        """Which of ``keys`` have their value in a file of their own (rare: entries over 32 KiB)."""
        return [
            key
            for size, params in sqlbatch.chunks([(key,) for key in keys], ROWS_PER_STATEMENT)
            for (key,) in self.con.execute(
                f"SELECT key FROM Cache WHERE raw = 1 AND filename IS NOT NULL AND key IN ({', '.join('?' * size)})",
                params,
            )
        ]

    def close(self) -> None:
        self.con.close()
