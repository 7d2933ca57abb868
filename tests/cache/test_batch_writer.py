"""The batched cache writer: rows as diskcache writes them, the pending window, the queue bound."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import diskcache
import pytest

from policyd.cache.rows import ROWS_PER_STATEMENT, ShardRows
from policyd.cache.settings import CacheSettings
from policyd.cache.stats import CacheStats
from policyd.cache.store import BytesDisk, ResponseStore
from policyd.cache.writer import BackgroundWriter, Write


@pytest.fixture
def store(tmp_path: Path):
    s = ResponseStore(tmp_path / "cache", CacheSettings(shards=4), CacheStats())
    assert s.available  # waits for the shards, opened in the background: the tests open their files too
    yield s
    s.close()


def writes(n: int, prefix: str = "k", size: int = 100) -> list[Write]:
    return [Write(key=f"{prefix}{i}", value=bytes([i % 256]) * size, expire_s=60.0, tenant="acme") for i in range(n)]


def reopened(directory: Path) -> diskcache.FanoutCache:
    return diskcache.FanoutCache(str(directory), shards=4, disk=BytesDisk)


def test_a_batch_is_read_back_by_diskcache_with_its_counts_tags_and_expiry(store: ResponseStore):
    batch = writes(50)
    assert store.set_many(batch) == 50
    other = reopened(store.directory)
    try:
        assert len(other) == 50, "diskcache's own count follows the batched rows"
        assert all(other.get(w.key) == w.value for w in batch)
        _value, expire_time, tag = other.get("k7", expire_time=True, tag=True)
        assert tag == "acme" and expire_time is not None
        assert other.evict("acme") == 50, "the tag index knows the rows"
    finally:
        other.close()
    assert store.usage().entries == 0


def test_a_key_written_twice_in_one_batch_or_again_later_keeps_the_latest(store: ResponseStore):
    first, second = Write("k", b"old", 60.0, "acme"), Write("k", b"new", 60.0, "acme")
    assert store.set_many([first, second]) == 1
    assert store.get("k") == b"new"
    assert store.set_many([Write("k", b"newer", 60.0, "beta")]) == 1
    assert store.get("k") == b"newer"
    assert store.usage().tenants["beta"].entries == 1 and store.usage().entries == 1


def test_an_answer_made_earlier_that_reaches_the_disk_later_does_not_replace_a_later_one(store: ResponseStore):
    # Two workers answer one key (the second a REFRESH); the first worker's batch commits last.
    now = time.time()
    assert store.set_many([Write("k", b"refreshed", 60.0, "acme", made_at=now - 1.0)]) == 1
    assert store.set_many([Write("k", b"stale", 60.0, "acme", made_at=now - 2.0)]) == 1
    assert store.get("k") == b"refreshed"
    assert store.set_many([Write("k", b"newest", 60.0, "acme", made_at=now)]) == 1
    assert store.get("k") == b"newest"
    assert store.usage().entries == 1


def test_large_entries_go_to_files_and_replacing_one_removes_its_file(store: ResponseStore):
    big = Write("big", b"x" * 40_000, 60.0, "acme")  # over diskcache's 32 KiB: a file of its own
    assert store.set_many([big, *writes(3)]) == 4
    assert store.get("big") == big.value
    files = [p for p in store.directory.rglob("*.val")]
    assert len(files) == 1
    assert store.set_many([Write("big", b"small now", 60.0, "acme")]) == 1
    assert store.get("big") == b"small now"
    assert not files[0].exists(), "diskcache removed the old value's file"


def test_a_shard_of_another_layout_is_written_through_diskcache_set(tmp_path: Path, store: ResponseStore):
    rows = ShardRows(store.directory / "000", 0.1)
    assert rows.usable
    rows.close()
    odd = tmp_path / "odd"
    odd.mkdir()
    con = sqlite3.connect(odd / "cache.db")
    con.execute("CREATE TABLE Cache (rowid INTEGER PRIMARY KEY, key BLOB, value BLOB)")
    con.close()
    assert not ShardRows(odd, 0.1).usable


def test_a_hit_right_after_a_miss_is_served_from_the_pending_write_then_from_disk(store: ResponseStore):
    writer = BackgroundWriter(store, CacheStats(), max_pending=10, stats_dir=None, batch_wait_s=5.0)
    try:
        (w,) = writes(1)
        assert writer.submit(w)
        assert writer.peek(w.key) == w.value and store.get(w.key) is None, "gathering its batch: in memory only"
        writer.flush()
        assert writer.peek(w.key) is None and store.get(w.key) == w.value
    finally:
        writer.close()


def test_a_full_batch_is_stored_without_waiting_out_the_window(store: ResponseStore):
    writer = BackgroundWriter(store, CacheStats(), max_pending=100, stats_dir=None, batch_wait_s=30.0, batch_rows=3)
    try:
        first = writes(3)
        for w in first:
            writer.submit(w)
        deadline = time.monotonic() + 10
        while not all(store.get(w.key) == w.value for w in first):
            assert time.monotonic() < deadline, "a batch of batch_rows waited for its window"
            time.sleep(0.01)
        assert writer.known.maybe(first[0].key) or not writer.known.enabled
        (late,) = writes(1, prefix="late")
        writer.submit(late)
        time.sleep(0.2)
        assert store.get(late.key) is None and writer.peek(late.key) == late.value, "one write waits for its window"
    finally:
        writer.close()
    assert store.get("late0") is not None


def test_a_batch_of_one_statement_replaces_rows_and_leaves_file_entries_to_diskcache(store: ResponseStore):
    rows = ShardRows(store.directory / "000", 1.0)
    fanout = store._cache
    assert fanout is not None
    big = next(k for k in (f"big{i}" for i in range(100)) if fanout.disk.hash(k) % store.shards == 0)
    try:
        assert store.set(big, b"x" * 40_000, expire_s=60.0, tenant="acme")  # over 32 KiB: a file of its own
        replacement = Write(big, b"small now", 60.0, "acme")
        assert rows.write([Write("a", b"1", 60.0, "acme"), replacement], now=1.0) == [replacement]
        assert store.get(big) == b"x" * 40_000, "left as it was, for diskcache to replace with its file"
        assert rows.write([Write("a", b"2", 60.0, "beta")], now=2.0) == []
        value, tag = rows.con.execute("SELECT value, tag FROM Cache WHERE key = 'a'").fetchone()
        assert (value, tag) == (b"2", "beta")
    finally:
        rows.close()


def test_the_queue_is_bounded_and_a_full_queue_drops_instead_of_blocking(store: ResponseStore):
    stats = CacheStats()
    release = threading.Event()
    real = store.set_many

    def slow(rows):  # the disk stalls
        release.wait(5)
        return real(rows)

    store.set_many = slow  # type: ignore[method-assign]
    writer = BackgroundWriter(store, stats, max_pending=4, stats_dir=None, batch_wait_s=0.0)
    try:
        accepted = [writer.submit(w) for w in writes(10)]
        assert accepted.count(True) == 4 and accepted[:4] == [True] * 4
        assert stats.snapshot().writes_dropped == 6
        release.set()
        writer.flush()
        assert stats.snapshot().writes == 4
        assert writer.submit(writes(1, prefix="later")[0]), "room again once stored"
    finally:
        release.set()
        writer.close()
    assert store.get("later0") is not None, "close stores what is queued"


def test_a_failed_batch_is_counted_and_the_writer_goes_on(store: ResponseStore):
    stats = store.stats
    writer = BackgroundWriter(store, stats, max_pending=100, stats_dir=None, batch_wait_s=0.0)
    blocker = sqlite3.connect(store.directory / "000" / "cache.db", timeout=1)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds this shard's write lock
        for w in writes(20):
            writer.submit(w)
        writer.flush()
        blocker.execute("ROLLBACK")
        assert stats.snapshot().io_errors >= 1
        for w in writes(20, prefix="after"):
            writer.submit(w)
        writer.flush()
        assert all(store.get(w.key) == w.value for w in writes(20, prefix="after"))
    finally:
        blocker.close()
        writer.close()


def test_every_batch_length_uses_one_of_a_few_statements(store: ResponseStore):
    """A statement per batch length kept up to 128 prepared per shard connection, each growing with its rows
    (the soak's RSS growth): the look-up and the upsert come in power-of-two sizes instead."""
    rows = ShardRows(store.directory / "000", 1.0)
    texts: set[str] = set()
    con = rows.con

    class Recording:
        def execute(self, sql: str, params: object = ()) -> sqlite3.Cursor:
            texts.add(sql)
            return con.execute(sql, params)  # type: ignore[arg-type]

    rows.con = Recording()  # type: ignore[assignment]
    lengths = [*range(1, ROWS_PER_STATEMENT + 2, 3), 2 * ROWS_PER_STATEMENT + 3]
    try:
        for length in lengths:
            assert rows.write(writes(length, prefix=f"n{length}-"), now=1.0) == []
        stored = con.execute("SELECT count(*), sum(length(value)) FROM Cache WHERE key LIKE 'n%'").fetchone()
    finally:
        con.close()
    shaped = {t for t in texts if t.startswith(("SELECT", "INSERT"))}
    assert len(shaped) <= 2 * ROWS_PER_STATEMENT.bit_length(), f"{len(shaped)} texts for {len(lengths)} lengths"
    assert stored == (sum(lengths), 100 * sum(lengths)), "every row stored, no padding row"
