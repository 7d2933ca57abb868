"""A stream that runs out of the request's deadline after its first delta ends DEADLINE_EXCEEDED, not UNAVAILABLE."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from faultkit import user
from google.rpc import error_details_pb2, status_pb2
from upstreams import chunk, openai_policy

from policyd.v1 import policyd_pb2 as pb
from tests.plugins.fake_upstream import Sse


def reason(err: grpc.aio.AioRpcError) -> str:
    raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert isinstance(raw, bytes), f"no details: the daemon did not answer ({err.details()!r})"
    info = error_details_pb2.ErrorInfo()
    assert status_pb2.Status.FromString(raw).details[0].Unpack(info)
    return info.reason


async def stream_until_error(stub: object, deadline_s: float) -> tuple[list[str], grpc.aio.AioRpcError]:
    deltas: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for event in stub.StreamComplete(user("tell me", cache_mode=pb.CACHE_MODE_BYPASS), timeout=deadline_s):  # type: ignore[attr-defined]
            if event.WhichOneof("event") == "delta":
                deltas.append(event.delta)
    return deltas, raised.value


async def test_running_out_of_deadline_mid_stream_is_deadline_exceeded(live, fake):
    fake.queue(Sse([chunk("Once upon"), 5.0, chunk(" a time", finish="stop")]))
    _, _, stub = await live(openai_policy(fake.url))
    deltas, err = await stream_until_error(stub, deadline_s=0.35)

    assert deltas == ["Once upon"]
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, err.details()
    assert reason(err) == "DEADLINE_EXCEEDED"
    assert "deadline exceeded after the stream from local-qwen started" in (err.details() or "")


async def test_an_upstream_that_stalls_mid_stream_is_still_unavailable(live, fake):
    fake.queue(Sse([chunk("Once upon"), 5.0, chunk(" a time", finish="stop")]))
    _, _, stub = await live(openai_policy(fake.url))
    deltas, err = await stream_until_error(stub, deadline_s=10)  # between_chunks_s: 0.5 trips first

    assert deltas == ["Once upon"]
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert reason(err) == "STREAM_BROKEN"
