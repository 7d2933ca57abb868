"""The group's wire: calls both ways, answers now or later, and a closed end fails what waits."""

from __future__ import annotations

import asyncio
import json
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


async def test_messages_split_across_reads_or_sent_together_are_each_dispatched_in_order():
    a, raw = socket.socketpair()
    seen: list[Message] = []
    peer = await Peer.open(a, lambda op, msg: seen.append({"op": op, **msg}))
    task = asyncio.create_task(peer.run())
    raw.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(raw, b'{"op":"one","x":1}\n{"op":"two","x":')  # a message and a half
    await asyncio.sleep(0.02)
    await loop.sock_sendall(raw, b'2}\n{"op":"three","x":3}\n')
    for _ in range(100):
        if len(seen) == 3:
            break
        await asyncio.sleep(0.01)
    assert seen == [{"op": "one", "x": 1}, {"op": "two", "x": 2}, {"op": "three", "x": 3}]
    ask = asyncio.ensure_future(peer.call("ping"))
    await asyncio.sleep(0.02)
    request = json.loads((await loop.sock_recv(raw, 1024)).decode())
    await loop.sock_sendall(raw, json.dumps({"re": request["id"], "pong": True}).encode() + b"\n")
    assert await ask == {"pong": True}
    raw.close()
    await task
    assert peer.closed.is_set()


async def test_a_line_that_is_not_json_closes_the_link_and_fails_the_calls_waiting():
    a, raw = socket.socketpair()
    peer = await Peer.open(a, lambda op, msg: None)
    task = asyncio.create_task(peer.run())
    waiting = asyncio.ensure_future(peer.call("never"))
    await asyncio.sleep(0.01)
    raw.sendall(b"not json\n")
    with pytest.raises(PeerGone):
        await waiting
    await task
    with pytest.raises(PeerGone):
        peer.notify("after")
    raw.close()
