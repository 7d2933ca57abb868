"""The on-disk store: bytes only, never unpickles, size-limited, degrades on a bad disk."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import diskcache
import pytest

from policyd.cache.settings import CacheSettings
from policyd.cache.stats import CacheStats, load_totals
from policyd.cache.store import BytesDisk, ResponseStore


def open_store(directory: Path, **settings: object) -> tuple[ResponseStore, CacheStats]:
    stats = CacheStats()
    return ResponseStore(directory, CacheSettings(**settings), stats), stats  # type: ignore[arg-type]


def test_bytes_round_trip_and_directory_is_private(tmp_path: Path):
    store, _ = open_store(tmp_path / "cache", shards=2)
    assert store.set("k", b"\x00value", expire_s=60, tenant="acme")
    assert store.get("k") == b"\x00value"
    assert store.get("absent") is None
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    store.close()


def test_non_bytes_values_and_non_str_keys_are_refused_not_pickled(tmp_path: Path):
    cache = diskcache.Cache(str(tmp_path), disk=BytesDisk)
    with pytest.raises(TypeError):
        cache.set("k", {"a": 1})
    with pytest.raises(TypeError):
        cache.set(("tuple", "key"), b"v")
    cache.close()


class _Boom:
    def __reduce__(self):
        return (pytest.fail, ("unpickled a planted value",))


def test_planted_pickle_is_evicted_without_being_unpickled(tmp_path: Path):
    store, stats = open_store(tmp_path, shards=4)
    planter = diskcache.FanoutCache(str(tmp_path), shards=4)  # the default Disk pickles
    planter.set("evil", _Boom())
    planter.set("evil-file", [_Boom()] * 20_000)  # big enough to go to a .val file
    planter.close()
    assert store.get("evil") is None
    assert store.get("evil-file") is None
    assert stats.snapshot().corrupt_evicted == 2
    assert store.usage().entries == 0, "refused rows are evicted"
    store.close()


def test_full_disk_is_a_failed_write_counted_and_logged_never_an_error(tmp_path: Path, caplog):
    # SQLite's max_page_count makes the database genuinely full (SQLITE_FULL) after a few pages.
    diskcache.FanoutCache(str(tmp_path), shards=1, disk=BytesDisk, sqlite_max_page_count=30).close()
    (tmp_path / "layout.json").write_text(json.dumps({"shards": 1}))
    store, stats = open_store(tmp_path, shards=1)
    with caplog.at_level(logging.WARNING, logger="policyd.cache.store"):
        results = [store.set(f"k{i}", b"x" * 4000, expire_s=60, tenant="t") for i in range(60)]
    assert any(results) and not all(results)
    assert stats.snapshot().io_errors == results.count(False)
    assert sum("disk is full" in r.getMessage() for r in caplog.records) == 1, "warned once, not per write"
    assert store.get("k0") == b"x" * 4000, "what was stored is still served"
    store.close()


def test_unopenable_directory_gives_a_store_that_answers_nothing(tmp_path: Path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.WARNING):
        store, stats = open_store(blocker / "cache")
    assert not store.available
    assert "cannot open" in stats.disabled_reason
    assert store.get("k") is None
    assert store.set("k", b"v", expire_s=1, tenant="t") is False
    assert store.clear() == 0 and store.usage().entries == 0
    assert any("running without a cache" in r.getMessage() for r in caplog.records)


def test_size_limit_evicts_the_oldest_entries(tmp_path: Path):
    store, _ = open_store(tmp_path, shards=2, size_limit_mb=0.1)
    value = b"v" * 2000
    for i in range(300):
        store.set(f"k{i:03d}", value, expire_s=600, tenant="t")
    usage = store.usage()
    assert usage.bytes <= store.size_limit * 1.2, usage
    assert usage.entries < 300
    assert store.get("k299") == value, "the newest entry is kept"
    assert store.get("k000") is None, "the oldest entry was evicted"
    store.close()


def test_clear_by_tenant_removes_only_that_tenants_entries(tmp_path: Path):
    store, _ = open_store(tmp_path, shards=3)
    for i in range(10):
        store.set(f"a{i}", b"1", expire_s=60, tenant="acme")
        store.set(f"g{i}", b"2", expire_s=60, tenant="globex")
    assert {t: u.entries for t, u in store.usage().tenants.items()} == {"acme": 10, "globex": 10}
    assert store.clear("acme") == 10
    assert store.get("a3") is None and store.get("g3") == b"2"
    assert store.clear() == 10
    assert store.usage().entries == 0
    store.close()


def test_shard_count_is_fixed_by_the_directory(tmp_path: Path):
    first, _ = open_store(tmp_path, shards=4)
    first.set("k", b"v", expire_s=60, tenant="t")
    first.close()
    second, _ = open_store(tmp_path, shards=16)
    assert second.shards == 4
    assert second.get("k") == b"v", "keys still map to the shards they were written to"
    second.close()


def test_counters_add_up_across_saves_and_processes(tmp_path: Path):
    one, two = CacheStats(), CacheStats()
    one.add("hits", 3)
    one.save(tmp_path)
    one.add("hits", 2)
    one.save(tmp_path)
    two.add("hits", 10)
    two.add("saved_usd", 0.5)
    two.save(tmp_path)
    totals = load_totals(tmp_path)
    assert totals.hits == 15 and totals.saved_usd == 0.5
    (tmp_path / "stats.json").write_bytes(pickle.dumps({"totals": {}}))
    assert load_totals(tmp_path).hits == 0, "an unreadable file counts from zero"


def test_a_shard_that_cannot_be_opened_in_the_background_gives_a_store_that_answers_nothing(tmp_path: Path, caplog):
    """The shards open in a thread (start-up does not wait for them); a failure there is the same degraded store."""
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    (directory / "001").write_text("a file where shard 001's directory should be")
    with caplog.at_level(logging.WARNING):
        store, stats = open_store(directory, shards=2)
        assert not store.available  # waits for the opening thread
    assert "cannot open" in stats.disabled_reason and stats.snapshot().io_errors == 1
    assert store.get("k") is None
    assert store.set("k", b"v", expire_s=1, tenant="t") is False
    assert any("running without a cache" in r.getMessage() for r in caplog.records)
    store.close()


def test_the_first_use_waits_for_the_shards_opening_in_the_background(tmp_path: Path):
    store, _ = open_store(tmp_path / "cache", shards=8)
    opening = store._opening
    assert opening is not None and opening.name == "policyd-cache-open"
    assert store.set("k", b"v", expire_s=60, tenant="t")  # no wait by the caller: the store waits
    assert not opening.is_alive() and store.get("k") == b"v"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir() if p.is_dir()) == [f"{i:03d}" for i in range(8)]
    store.close()
