"""The group's shared state, as the supervisor keeps it: one budget, one bucket, one key for N workers."""

from __future__ import annotations

import asyncio
import time

from policyd.workers.state import GroupState

LINE = [["tenant-acme-day", 1.0, time.time() + 86400]]


def test_a_new_line_asks_for_its_seed_then_two_workers_share_one_budget():
    state = GroupState()
    assert state.reserve(1, {"lines": LINE, "usd": 0.4}) == {"seed": True}
    assert state.reserve(1, {"lines": LINE, "usd": 0.4, "seeds": [0.2]}) == {}
    refused = state.reserve(2, {"lines": LINE, "usd": 0.5})
    assert refused == {"refused": 0, "spent": 0.2, "reserved": 0.4}
    state.settle(1, {"keys": ["tenant-acme-day"], "reserved": 0.4, "spent": 0.1})
    assert state.reserve(2, {"lines": LINE, "usd": 0.5}) == {}
    assert (state.spent["tenant-acme-day"], state.reserved["tenant-acme-day"]) == (0.30000000000000004, 0.5)


def test_a_worker_that_exits_releases_its_reservations():
    state = GroupState()
    state.reserve(1, {"lines": LINE, "usd": 0.6, "seeds": [0.0]})
    assert "refused" in state.reserve(2, {"lines": LINE, "usd": 0.6})
    state.detach(1)
    assert state.reserve(2, {"lines": LINE, "usd": 0.6}) == {}


def test_the_rate_limit_is_one_bucket_whichever_worker_draws():
    state = GroupState(clock=lambda: 100.0)
    draws = [state.rate({"tenant": "acme", "rpm": 3, "tpm": None, "estimate": 5}) for _ in range(4)]
    assert draws[:3] == [{}, {}, {}]
    assert draws[3]["limit"] == "3 requests per minute" and draws[3]["wait_s"] > 0


async def test_a_duplicate_waits_for_the_first_answer_and_a_failed_first_lets_it_run():
    state = GroupState()
    claim = {"tenant": "t", "request_id": "r", "fingerprint": "f", "window_s": 60.0, "max_keys": 10}
    assert state.claim(1, claim) == {"owner": True}
    assert state.claim(2, {**claim, "fingerprint": "other"}) == {"conflict": True}
    waiting = asyncio.ensure_future(state.claim(2, claim))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    state.answer({"tenant": "t", "request_id": "r", "answer": "QUJD"})
    assert await waiting == {"answer": "QUJD"}
    assert state.claim(3, claim) == {"answer": "QUJD"}
    state.keys.clear()
    assert state.claim(1, claim) == {"owner": True}
    waiting = asyncio.ensure_future(state.claim(2, claim))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    state.detach(1)  # the owner died: the duplicate runs it itself
    assert await waiting == {"retry": True}
