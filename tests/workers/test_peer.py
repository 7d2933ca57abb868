"""The group's wire: calls both ways, answers now or later, and a closed end fails what waits."""

from __future__ import annotations

import asyncio
import socket

import pytest

from policyd.workers.peer import Message, Peer, PeerGone


async def test_calls_both_ways_answered_now_or_later_and_notifications_without_answer():
    a, b = socket.socketpair()
    seen: list[Message] = []

    async def later(msg: Message) -> Message:
        await asyncio.sleep(0.01)
        return {"late": msg["x"] * 2}

    def on_a(op: str, msg: Message) -> Message | None:
        seen.append({"op": op, **msg})
        return {"now": msg.get("x")} if op == "now" else None

    def on_b(op: str, msg: Message) -> object:
        if op == "later":
            return later(msg)
        raise ValueError(f"no {op}")

    left, right = await Peer.open(a, on_a), await Peer.open(b, on_b)
    tasks = [asyncio.create_task(left.run()), asyncio.create_task(right.run())]
    assert await right.call("now", x=3) == {"now": 3}
    assert await left.call("later", x=4) == {"late": 8}
    right.notify("note", x=5)
    with pytest.raises(RuntimeError, match="no bogus"):
        await left.call("bogus")
    await asyncio.sleep(0.05)  # a notification has no answer to wait for
    assert seen[-1] == {"op": "note", "x": 5}
    pending = asyncio.ensure_future(right.call("never-answered-before-close"))  # left answers None: {}
    assert await pending == {}
    slow = asyncio.ensure_future(left.call("later", x=1))
    await right.aclose()
    with pytest.raises(PeerGone):
        await slow
    await asyncio.gather(*tasks)
    with pytest.raises(PeerGone):
        left.notify("after close")
