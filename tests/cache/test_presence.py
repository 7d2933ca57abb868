"""The keys-on-disk filter: a miss skips the disk read, and no process's answer is ever missed after a sync."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from policyd.cache.keys import call_key
from policyd.cache.presence import BITS, Bloom, KnownKeys
from policyd.cache.service import ResponseCache
from policyd.cache.settings import CacheSettings
from policyd.types import Message, ModelCall, ModelResponse, ModelSpec, Role, Usage

ROOT = Path(__file__).resolve().parents[2]
MODEL = ModelSpec("m", "prov", "up/m", 1.0, 2.0, 1000, "mit")
NO_TURN = None

OTHER_PROCESS = """
import asyncio, dataclasses, sys
from pathlib import Path
from policyd.cache.service import ResponseCache
from policyd.cache.settings import CacheSettings
from policyd.types import Message, ModelCall, ModelResponse, ModelSpec, Role, Usage

directory, first, count, clear = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "clear"
model = ModelSpec("m", "prov", "up/m", 1.0, 2.0, 1000, "mit")

async def main():
    cache = ResponseCache(directory, CacheSettings(shards=2))
    if clear:
        cache.store.clear()
    for i in range(first, first + count):
        async def upstream(turn, call, on_delta, i=i):
            return ModelResponse(Message(Role.ASSISTANT, f"answer {i}"), Usage(1, 1), "stop", "up/m")
        call = ModelCall(model=model, messages=(Message(Role.USER, f"prompt {i}"),), tenant="acme")
        await cache.layer(None, call, None, upstream)
    cache.close()

asyncio.run(main())
"""


def call(i: int) -> ModelCall:
    return ModelCall(model=MODEL, messages=(Message(Role.USER, f"prompt {i}"),), tenant="acme")


def cache_key(i: int) -> str:
    return call_key(call(i))


def store_elsewhere(directory: Path, first: int, count: int, *, clear: bool = False) -> None:
    """Another process stores answers ``first .. first+count-1`` in the directory (and clears it first)."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}")
    cmd = [sys.executable, "-c", OTHER_PROCESS, str(directory), str(first), str(count), "clear" if clear else "-"]
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, timeout=60)


def synced(cache: ResponseCache) -> None:
    """Have the writer thread sync the filter (as a lookup on a stale filter does) and wait for it."""
    known = cache.writer.known
    before = known.synced_at
    cache.writer.request_sync()
    deadline = time.monotonic() + 10
    while known.synced_at == before:
        assert time.monotonic() < deadline, "the writer thread never synced the filter"
        time.sleep(0.01)


def counting_reads(cache: ResponseCache) -> list[str]:
    reads: list[str] = []
    real_get = cache.store.get
    cache.store.get = lambda key: reads.append(key) or real_get(key)  # type: ignore[method-assign]
    return reads


async def never_called(turn, call, on_delta):
    raise AssertionError(f"the upstream was called for {call.messages[0].content!r}: the cache missed an answer")


async def fresh_answer(turn, call, on_delta):
    return ModelResponse(Message(Role.ASSISTANT, "fresh"), Usage(1, 1), "stop", "up/m")


@pytest.fixture
def cache(tmp_path: Path):
    c = ResponseCache(tmp_path, CacheSettings(shards=2, reread_after_s=60))
    yield c
    c.close()


def test_the_filter_never_forgets_a_key_and_keeps_its_size():
    bloom = Bloom()
    size = len(bloom.bits)
    keys = [f"v1:{i:064x}" for i in range(20_000)]
    for key in keys:
        bloom.add(key)
    assert all(key in bloom for key in keys)
    others = sum(f"v1:{i:064x}" in bloom for i in range(20_000, 40_000))
    assert others <= 20, f"{others} of 20000 keys never added were claimed present"
    assert len(bloom.bits) == size == BITS // 8


async def test_answers_another_process_stored_are_found_after_a_sync_and_never_before_it_is_claimed_absent(cache):
    store_elsewhere(cache.directory, 0, 200)
    reads = counting_reads(cache)
    assert cache.writer.known.synced_at is None
    hit = await cache.layer(NO_TURN, call(7), None, never_called)
    assert hit.cached and hit.message.content == "answer 7", "not synced yet: the disk is read"
    synced(cache)
    for i in range(200):
        assert cache.writer.known.maybe(cache_key(i)), f"answer {i}, stored by another process, claimed absent"
        hit = await cache.layer(NO_TURN, call(i), None, never_called)
        assert hit.message.content == f"answer {i}"
    reads.clear()
    for i in range(200, 300):
        answer = await cache.layer(NO_TURN, call(i), None, fresh_answer)
        assert not answer.cached and answer.message.content == "fresh"
    assert len(reads) <= 1, f"{len(reads)} of 100 misses read the disk"


@pytest.mark.parametrize(("before", "after"), [(40, 10), (10, 40)])
async def test_a_clear_then_new_rows_on_the_same_rowids_elsewhere_are_found(cache, before: int, after: int):
    store_elsewhere(cache.directory, 0, before)
    synced(cache)
    # The table emptied, rowids start again from 1: the newest row read is gone (40, 10) or holds
    # another key (10, 40); either way the shard is read again.
    store_elsewhere(cache.directory, 1000, after, clear=True)
    synced(cache)
    for i in range(1000, 1000 + after):
        hit = await cache.layer(NO_TURN, call(i), None, never_called)
        assert hit.message.content == f"answer {i}"
    assert not (await cache.layer(NO_TURN, call(3), None, fresh_answer)).cached, "cleared: answered anew"


async def test_this_process_knows_its_own_answers_before_they_reach_the_disk(cache):
    synced(cache)
    await cache.layer(NO_TURN, call(1), None, fresh_answer)
    cache.writer.flush()
    cache.layer.recent.forget(cache_key(1))
    reads = counting_reads(cache)
    hit = await cache.layer(NO_TURN, call(1), None, never_called)
    assert hit.cached and hit.message.content == "fresh" and len(reads) == 1


async def test_a_sync_reads_no_shard_that_no_other_connection_wrote_to(cache, monkeypatch):
    from policyd.cache import presence

    read: list[int] = []
    real = presence.read_since
    monkeypatch.setattr(presence, "read_since", lambda con, mark, sink: read.append(1) or real(con, mark, sink))
    synced(cache)
    assert len(read) == 2, "the first sync reads every shard"
    for i in range(20):
        await cache.layer(NO_TURN, call(i), None, fresh_answer)
    cache.writer.flush()
    synced(cache)
    assert len(read) == 2, "only this process's own writes since: nothing read back"
    store_elsewhere(cache.directory, 100, 10)
    synced(cache)
    assert len(read) > 2
    for i in range(100, 110):
        assert (await cache.layer(NO_TURN, call(i), None, never_called)).cached


async def test_a_stale_filter_reads_the_disk_and_asks_for_a_sync(tmp_path: Path):
    now = [100.0]
    asked: list[float] = []
    known = KnownKeys(2, 1.0, lambda: asked.append(now[0]), clock=lambda: now[0])
    assert known.maybe("v1:x") and asked == [100.0], "never synced: maybe, and a sync is asked for"
    c = ResponseCache(tmp_path, CacheSettings(shards=2))
    try:
        assert known.sync(c.store.shard_connection)
    finally:
        c.close()
    assert not known.maybe("v1:x"), "fresh and never stored: absent"
    now[0] += 0.05
    assert not known.maybe("v1:x") and len(asked) == 1, "within 0.1 s: no sync asked"
    now[0] += 0.55
    assert not known.maybe("v1:x") and len(asked) == 2, "the sync lags: the filter is still used, a sync asked"
    assert not known.maybe("v1:x") and len(asked) == 2, "asked once per 0.1 s, not per lookup"
    now[0] += 0.5
    assert known.maybe("v1:x"), "not synced within reread_after_s: the disk decides"


async def test_reread_after_zero_turns_the_filter_off(tmp_path: Path):
    c = ResponseCache(tmp_path, CacheSettings(shards=2, reread_after_s=0))
    try:
        reads = counting_reads(c)
        for i in range(3):
            assert not (await c.layer(NO_TURN, call(i), None, fresh_answer)).cached
        assert len(reads) == 3 and not c.writer.known.enabled
    finally:
        c.close()
