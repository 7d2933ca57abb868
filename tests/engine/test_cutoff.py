"""The hot path's cutoff keeps ``asyncio.timeout``'s contract on one timer handle."""

from __future__ import annotations

import asyncio

import pytest

from policyd.engine.containment import OwnTime
from policyd.engine.cutoff import Cutoff


async def test_a_block_that_runs_past_its_time_raises_timeout_error_and_the_task_is_not_left_cancelled():
    with pytest.raises(TimeoutError):
        with Cutoff(0.01):
            await asyncio.sleep(5)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)  # the task goes on


async def test_a_block_that_ends_in_time_returns_and_its_timer_is_gone():
    with Cutoff(5) as cut:
        await asyncio.sleep(0)
    assert not cut.expiring
    await asyncio.sleep(0.02)  # nothing fires later


async def test_none_never_fires():
    with Cutoff(None) as cut:
        await asyncio.sleep(0.01)
    assert not cut.expiring


async def test_a_cancellation_from_outside_stays_a_cancellation_even_when_the_time_came_too():
    async def both() -> None:
        with Cutoff(0):
            asyncio.current_task().cancel()  # type: ignore[union-attr]  # a second, outside request
            await asyncio.sleep(5)

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(both())


async def test_a_call_that_ends_after_its_plugin_returned_sets_no_timer_on_the_task():
    """A strategy may leave a call running (a hedge's loser); its wait ending later must not arm the
    plugin's own-time timer again, which would cancel whatever the task runs by then."""
    own = OwnTime("strategies", "hedge", 0.02)
    own.arm()
    with own.wait():  # the call left running
        own.disarm(None)  # the strategy returned meanwhile
    await asyncio.sleep(0.08)  # well past the limit: this task is not cancelled
    assert not own.expiring


async def test_a_plugin_past_its_own_time_is_cancelled_once_its_wait_ends():
    own = OwnTime("strategies", "slow", 0.02)
    own.arm()
    with own.wait():
        await asyncio.sleep(0.05)  # waiting on a model does not count
    assert not own.expiring
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(1)  # its own time runs out
    assert own.expiring and own.own_armed and own.disarm(asyncio.CancelledError)
