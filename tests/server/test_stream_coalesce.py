"""StreamComplete sends text pieces that queued up together as one message, in order."""

from __future__ import annotations

import asyncio

from policyd.server.servicer import _coalesced, _take


def test_runs_of_one_kind_of_text_are_joined_and_nothing_moves_across_other_events():
    batch = [
        ("delta", "The"),
        ("delta", " answer"),
        ("attempt", "A1"),
        ("delta", " is"),
        ("provisional", "draft "),
        ("provisional", "text"),
        ("settle", (True, "")),
        ("delta", " 42."),
        ("done", None),
    ]
    assert _coalesced(batch) == [
        ("delta", "The answer"),
        ("attempt", "A1"),
        ("delta", " is"),
        ("provisional", "draft text"),
        ("settle", (True, "")),
        ("delta", " 42."),
        ("done", None),
    ]
    assert _coalesced([("attempt", "A1"), ("attempt", "A2")]) == [("attempt", "A1"), ("attempt", "A2")]


async def test_take_waits_for_the_first_event_then_takes_every_one_already_queued():
    queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
    taker = asyncio.create_task(_take(queue))
    await asyncio.sleep(0)
    assert not taker.done()
    queue.put_nowait(("delta", "a"))
    queue.put_nowait(("delta", "b"))
    assert await taker == [("delta", "a"), ("delta", "b")]
    assert queue.empty()
