"""Keys, entries, single-flight and the layer's modes, without a server."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyd.cache.codec import CorruptEntry, Entry, decode, encode
from policyd.cache.keys import KEY_VERSION, call_key, canonical, form_of, stdlib_canonical
from policyd.cache.layer import RECENT_ENTRIES, RecentEntries
from policyd.cache.service import ResponseCache
from policyd.cache.settings import CacheSettings
from policyd.cache.singleflight import SingleFlight
from policyd.errors import NotFound, UpstreamError
from policyd.types import (
    AttemptRole,
    CacheMode,
    Effort,
    GenerationParams,
    Message,
    ModelCall,
    ModelResponse,
    ModelSpec,
    ResponseFormat,
    Role,
    Tool,
    ToolCall,
    Usage,
)

MODEL = ModelSpec("m", "prov", "up/m", 1.0, 2.0, 1000, "mit")
BASE = ModelCall(model=MODEL, messages=(Message(Role.USER, "hi"),), tenant="acme")


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "change",
    [
        {"tenant": "globex"},
        {"model": dataclasses.replace(MODEL, provider="other")},
        {"model": dataclasses.replace(MODEL, upstream="up/m-2")},
        {"model": dataclasses.replace(MODEL, options={"thinking_flag": "x"})},
        {"messages": (Message(Role.USER, "hi!"),)},
        {"messages": (Message(Role.SYSTEM, "hi"),)},
        {"messages": (Message(Role.ASSISTANT, "", tool_calls=(ToolCall("1", "f", "{}"),)),)},
        {"tools": (Tool("lookup"),)},
        {"params": GenerationParams(temperature=0.2)},
        {"params": GenerationParams(top_p=0.9)},
        {"params": GenerationParams(max_output_tokens=10)},
        {"params": GenerationParams(stop=("x",))},
        {"params": GenerationParams(seed=1)},
        {"params": GenerationParams(response_format=ResponseFormat(kind="json_object"))},
        {"effort": Effort.HIGH},
        {"role": AttemptRole.VALIDATE},
        {"task": "coding"},
        {"sample_index": 1},
        {"logprobs": True},
    ],
)
def test_every_part_that_can_change_an_answer_changes_the_key(change):
    assert call_key(dataclasses.replace(BASE, **change)) != call_key(BASE)


def test_deadline_and_cache_mode_do_not_change_the_key():
    same = dataclasses.replace(BASE, timeout_s=3.0, cache_mode=CacheMode.REFRESH, cache_ttl_s=5)
    assert call_key(same) == call_key(BASE)


def test_key_ignores_the_order_of_schema_keys():
    a = dataclasses.replace(BASE, tools=(Tool("t", parameters={"type": "object", "required": ["a"]}),))
    b = dataclasses.replace(BASE, tools=(Tool("t", parameters={"required": ["a"], "type": "object"}),))
    assert call_key(a) == call_key(b)


@given(st.text(), st.text())
def test_distinct_tenants_never_share_a_key(t1, t2):
    k1 = call_key(dataclasses.replace(BASE, tenant=t1))
    k2 = call_key(dataclasses.replace(BASE, tenant=t2))
    assert (k1 == k2) == (t1 == t2)


RICH = dataclasses.replace(
    BASE,
    model=dataclasses.replace(MODEL, options={"thinking_flag": "on", "n": [1, 2.5], "z": {"b": 1, "a": 0}}),
    messages=(Message(Role.SYSTEM, "Réponds en français ✓"), Message(Role.USER, 'tab\t "quote" \u0001 \U0001f600')),
    tools=(Tool("lookup", "find a thing", {"type": "object", "properties": {"q": {"type": "string"}}}),),
    params=GenerationParams(temperature=0.7, top_p=0.95, max_output_tokens=256, stop=("\n\n",), seed=7),
    effort=Effort.HIGH,
)


@pytest.mark.parametrize("call", [BASE, RICH])
def test_keys_are_the_bytes_the_standard_library_wrote_so_stored_entries_still_match(call):
    assert canonical(call) == stdlib_canonical(form_of(call))


@given(st.text(), st.floats(min_value=0.0, max_value=2.0).filter(lambda t: t == 0 or t >= 1e-4))
def test_any_prompt_and_temperature_key_as_before(text, temperature):
    """Below 1e-4 the two write floats differently (``1e-05`` and ``0.00001``): such keys changed once."""
    call = dataclasses.replace(
        BASE, messages=(Message(Role.USER, text),), params=GenerationParams(temperature=temperature)
    )
    assert canonical(call) == stdlib_canonical(form_of(call))


def test_an_option_orjson_cannot_write_still_gets_a_key():
    huge = dataclasses.replace(BASE, model=dataclasses.replace(MODEL, options={"big": 2**70}))
    assert call_key(huge) != call_key(BASE)
    assert canonical(huge) == stdlib_canonical(form_of(huge))


def full_key(call: ModelCall) -> str:
    return f"v{KEY_VERSION}:{hashlib.sha256(canonical(call)).hexdigest()}"


MARKED = dataclasses.replace(MODEL, options={"x": "\x00policyd:params\x00", "\x00policyd:tools\x00": 1})


@pytest.mark.parametrize(
    "call",
    [
        BASE,
        RICH,
        dataclasses.replace(RICH, tenant="\x00policyd:tools\x00"),
        dataclasses.replace(BASE, model=MARKED),
        dataclasses.replace(BASE, params=GenerationParams(seed=2**70)),
        dataclasses.replace(BASE, model=dataclasses.replace(MODEL, options={"big": 2**70})),
        dataclasses.replace(BASE, logprobs=1),  # type: ignore[arg-type]
        dataclasses.replace(RICH, tools=(Tool("t", parameters={"n": (1, 2), "s": {"b", "a"}}),)),
    ],
)
def test_a_key_hashed_in_pieces_is_the_hash_of_the_whole_form_every_time(call):
    assert call_key(call) == full_key(call) == call_key(call), "the remembered pieces give the same key"


@given(st.text(), st.text(), st.sampled_from([BASE, RICH]), st.lists(st.tuples(st.text(), st.text()), max_size=2))
def test_keys_of_any_prompt_and_tenant_are_the_whole_form_hashed(text, tenant, base, calls):
    tool_calls = tuple(ToolCall(f"c{i}", name, args) for i, (name, args) in enumerate(calls))
    messages = (Message(Role.USER, text), Message(Role.ASSISTANT, "", tool_calls=tool_calls, name=text[:3]))
    call = dataclasses.replace(base, messages=messages, tenant=tenant)
    assert call_key(call) == full_key(call)


# ---------------------------------------------------------------- entries


RESPONSE = ModelResponse(
    message=Message(Role.ASSISTANT, "answer", tool_calls=(ToolCall("c1", "f", '{"a": 1}'),)),
    usage=Usage(10, 20, 5),
    finish_reason="tool_calls",
    response_model="up/m-0801",
    logprobs=(-0.1, -0.2),
)


def test_entry_round_trips():
    entry = Entry(key="k", tenant="acme", model="m", stored_at=1.0, expires_at=2.0, response=RESPONSE)
    assert decode(encode(entry), key="k", tenant="acme") == entry


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff\xfe", b"[]", b"{}", b'{"format": 2}', b"null", b'{"format": true}'],
)
def test_malformed_entries_are_corrupt(data):
    with pytest.raises(CorruptEntry):
        decode(data, key="k", tenant="acme")


def test_entry_read_for_another_key_or_tenant_is_refused():
    data = encode(Entry(key="k", tenant="acme", model="m", stored_at=1.0, expires_at=2.0, response=RESPONSE))
    with pytest.raises(CorruptEntry):
        decode(data, key="k", tenant="globex")
    with pytest.raises(CorruptEntry):
        decode(data, key="other", tenant="acme")


# ---------------------------------------------------------------- single-flight


def counted_call() -> tuple[list[int], Callable[[object], Awaitable[int]]]:
    """A call taking 50 ms that answers its run's number, and the list of its runs."""
    runs: list[int] = []

    async def work(sink: object) -> int:
        runs.append(len(runs) + 1)
        await asyncio.sleep(0.05)
        return len(runs)

    return runs, work


async def test_single_flight_shares_one_call_and_propagates_failure():
    flights: SingleFlight[int] = SingleFlight()
    runs, work = counted_call()
    results = await asyncio.gather(*(flights.run("k", work, None) for _ in range(10)))
    assert runs == [1] and [r for r, _ in results] == [1] * 10
    assert [shared for _, shared in results].count(False) == 1
    assert len(flights) == 0

    async def broken(sink):
        await asyncio.sleep(0.01)
        raise UpstreamError("p", "boom", retryable=False)

    outcomes = await asyncio.gather(*(flights.run("k", broken, None) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(o, UpstreamError) for o in outcomes)


async def test_single_flight_cancels_the_call_when_every_waiter_left():
    flights: SingleFlight[int] = SingleFlight()
    started, finished = asyncio.Event(), False

    async def slow(sink):
        nonlocal finished
        started.set()
        await asyncio.sleep(10)
        finished = True
        return 1

    waiters = [asyncio.ensure_future(flights.run("k", slow, None)) for _ in range(3)]
    await started.wait()
    for w in waiters:
        w.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    await asyncio.sleep(0)
    assert len(flights) == 0 and not finished


async def test_a_caller_after_every_waiter_left_starts_a_call_of_its_own():
    flights: SingleFlight[int] = SingleFlight()
    runs, work = counted_call()
    first = asyncio.ensure_future(flights.run("k", work, None))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert await flights.run("k", work, None) == (2, False), "not the cancelled call's CancelledError"
    assert runs == [1, 2]
    assert len(flights) == 0


async def test_leader_stream_stops_when_it_leaves_followers_still_answered():
    flights: SingleFlight[str] = SingleFlight()
    steps = [asyncio.Event() for _ in range(3)]
    seen: list[str] = []
    two_seen = asyncio.Event()

    def leader_sink(text: str) -> None:
        seen.append(text)
        if len(seen) == 2:
            two_seen.set()

    async def streaming(sink):
        for step, piece in zip(steps, "abc", strict=True):
            await step.wait()
            if sink:
                sink(piece)
        return "abc"

    leader = asyncio.ensure_future(flights.run("k", streaming, leader_sink))
    await asyncio.sleep(0)
    follower = asyncio.ensure_future(flights.run("k", streaming, None))
    steps[0].set()
    steps[1].set()
    await two_seen.wait()
    leader.cancel()
    await asyncio.gather(leader, return_exceptions=True)
    steps[2].set()
    assert (await follower) == ("abc", True)
    assert seen == ["a", "b"], "the leader's sink was detached when it left"


# ---------------------------------------------------------------- layer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


NO_TURN = None
"""The cache layer only passes the Turn on to the layers inside it."""


@pytest.fixture
def cache(tmp_path: Path):
    c = ResponseCache(tmp_path, CacheSettings(shards=2, default_ttl_s=100))
    c.layer.clock = FakeClock()
    yield c
    c.close()


def upstream_counting():
    calls: list[ModelCall] = []

    async def next_(turn, call, on_delta):
        calls.append(call)
        if on_delta:
            on_delta("ans")
            on_delta("wer")
        return dataclasses.replace(RESPONSE, message=Message(Role.ASSISTANT, "answer"))

    return calls, next_


async def test_ttl_from_the_call_then_the_default(cache):
    calls, next_ = upstream_counting()
    clock: FakeClock = cache.layer.clock
    short = dataclasses.replace(BASE, cache_ttl_s=10)
    await cache.layer(NO_TURN, short, None, next_)
    assert (await cache.layer(NO_TURN, short, None, next_)).cached
    clock.now += 11
    assert not (await cache.layer(NO_TURN, short, None, next_)).cached
    other = dataclasses.replace(BASE, messages=(Message(Role.USER, "other"),))
    await cache.layer(NO_TURN, other, None, next_)
    clock.now += 99
    assert (await cache.layer(NO_TURN, other, None, next_)).cached
    clock.now += 2
    assert not (await cache.layer(NO_TURN, other, None, next_)).cached
    assert len(calls) == 4


async def test_a_replaced_entry_is_answered_anew_not_from_the_decoded_memo(cache):
    _calls, next_ = upstream_counting()
    await cache.layer(NO_TURN, BASE, None, next_)
    cache.writer.flush()
    assert (await cache.layer(NO_TURN, BASE, None, next_)).message.content == "answer"  # decoded, remembered

    async def newer(turn, call, on_delta):
        return dataclasses.replace(RESPONSE, message=Message(Role.ASSISTANT, "newer answer"))

    await cache.layer(NO_TURN, dataclasses.replace(BASE, cache_mode=CacheMode.REFRESH), None, newer)
    cache.writer.flush()
    hit = await cache.layer(NO_TURN, BASE, None, next_)
    assert hit.cached and hit.message.content == "newer answer"
    cache.store.clear()
    assert not (await cache.layer(NO_TURN, BASE, None, next_)).cached, "a cleared entry is gone at once"


def test_the_decoded_memo_stays_bounded():
    memo = RecentEntries()
    for i in range(RECENT_ENTRIES + 50):
        key = f"k{i}"
        entry = Entry(key=key, tenant="acme", model="m", stored_at=0.0, expires_at=1.0, response=RESPONSE)
        assert memo.decode(encode(entry), key=key, tenant="acme") == entry
    assert len(memo._entries) == RECENT_ENTRIES
    with pytest.raises(CorruptEntry):
        memo.decode(b"{}", key="k0", tenant="acme")


async def test_a_hit_is_served_before_the_writer_stored_it(cache):
    calls, next_ = upstream_counting()
    release = threading.Event()
    real_set = cache.store.set_many

    def slow_set(*args, **kwargs):
        release.wait(5)
        return real_set(*args, **kwargs)

    cache.store.set_many = slow_set
    await cache.layer(NO_TURN, BASE, None, next_)
    hit = await cache.layer(NO_TURN, BASE, None, next_)
    assert hit.cached and len(calls) == 1
    assert cache.store.get(call_key(BASE)) is None, "not on disk yet: answered from the pending write"
    release.set()
    cache.writer.flush()
    assert cache.store.get(call_key(BASE)) is not None


async def test_streaming_hit_sends_the_stored_text(cache):
    _calls, next_ = upstream_counting()
    first: list[str] = []
    await cache.layer(NO_TURN, BASE, first.append, next_)
    again: list[str] = []
    hit = await cache.layer(NO_TURN, BASE, again.append, next_)
    assert first == ["ans", "wer"] and again == ["answer"] and hit.cached


async def test_only_if_cached_miss_raises_not_found_without_calling(cache):
    calls, next_ = upstream_counting()
    with pytest.raises(NotFound):
        await cache.layer(NO_TURN, dataclasses.replace(BASE, cache_mode=CacheMode.ONLY_IF_CACHED), None, next_)
    assert calls == []


async def test_error_finish_and_exceptions_are_not_stored(cache):
    async def errored(turn, call, on_delta):
        return dataclasses.replace(RESPONSE, finish_reason="error")

    async def raising(turn, call, on_delta):
        on_delta("partial ")
        raise UpstreamError("p", "stream broke", retryable=True)

    await cache.layer(NO_TURN, BASE, None, errored)
    with pytest.raises(UpstreamError):
        await cache.layer(NO_TURN, dataclasses.replace(BASE, sample_index=1), lambda t: None, raising)
    cache.writer.flush()
    assert cache.usage().entries == 0


async def test_a_hot_entry_is_answered_from_memory_and_another_process_change_is_seen_after_the_window(cache):
    _calls, next_ = upstream_counting()
    now = [0.0]
    cache.layer.recent.reread_after_s, cache.layer.recent.clock = 1.0, lambda: now[0]
    await cache.layer(NO_TURN, BASE, None, next_)
    cache.writer.flush()
    reads: list[str] = []
    real_get = cache.store.get
    cache.store.get = lambda key: reads.append(key) or real_get(key)
    assert (await cache.layer(NO_TURN, BASE, None, next_)).cached and len(reads) == 1, "first hit: read from disk"
    assert (await cache.layer(NO_TURN, BASE, None, next_)).cached and len(reads) == 1, "within the window: memory"
    other = ResponseCache(cache.directory, CacheSettings(shards=2))  # another process's handle on the directory
    other.store.clear()
    other.close()
    assert (await cache.layer(NO_TURN, BASE, None, next_)).cached, "another process's clear: not seen yet"
    now[0] += 1.5
    assert not (await cache.layer(NO_TURN, BASE, None, next_)).cached, "seen once the window has passed"
    assert len(reads) == 2


async def test_reread_after_zero_reads_the_disk_on_every_hit(tmp_path: Path):
    c = ResponseCache(tmp_path, CacheSettings(shards=2, reread_after_s=0))
    try:
        _calls, next_ = upstream_counting()
        await c.layer(NO_TURN, BASE, None, next_)
        c.writer.flush()
        assert (await c.layer(NO_TURN, BASE, None, next_)).cached
        other = ResponseCache(tmp_path, CacheSettings(shards=2))
        other.store.clear()
        other.close()
        assert not (await c.layer(NO_TURN, BASE, None, next_)).cached, "a clear elsewhere is seen at once"
    finally:
        c.close()
