"""The idempotency keys' window and cap, on a fake clock."""

from __future__ import annotations

from policyd.server.idempotency import IdempotencyKeys
from policyd.v1 import policyd_pb2 as pb


def req(request_id: str, text: str = "hi") -> pb.CompleteRequest:
    return pb.CompleteRequest(request_id=request_id, messages=[pb.Message(role=pb.ROLE_USER, content=text)])


async def test_a_key_expires_after_the_window_and_the_oldest_goes_past_the_cap():
    now = [0.0]
    keys = IdempotencyKeys(lambda: 60.0, lambda: 2, clock=lambda: now[0])
    runs: list[str] = []

    async def run(request_id: str, text: str = "hi") -> pb.CompleteResponse:
        async def first() -> pb.CompleteResponse:
            runs.append(request_id)
            return pb.CompleteResponse(request_id=request_id)

        return await keys.run("t", req(request_id, text), first)

    assert not (await run("a")).replayed
    assert (await run("a")).replayed
    now[0] = 61.0
    assert not (await run("a", "a new request, the old key expired")).replayed
    await run("b")
    await run("c")  # the cap is 2: "a" (the oldest) is dropped
    assert len(keys) == 2
    assert not (await run("a", "anything")).replayed
    assert runs == ["a", "a", "b", "c", "a"]
