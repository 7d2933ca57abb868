"""The daemon's DEADLINE_EXCEEDED answer arrives before the caller's own timer fires."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from policyd.server.convert import answer_margin_s
from policyd.v1 import policyd_pb2 as pb

SLOW = """
providers:
  simulated: {kind: simulated, latency_scale: 1.0}
policies:
  default:
    rules:
      - name: slow
        plan: {strategy: single, params: {model: claude-opus-4.1}}
"""


@pytest.mark.parametrize(("remaining", "margin"), [(0.1, 0.02), (1.0, 0.05), (2.0, 0.1), (30.0, 0.25)])
def test_the_answer_margin_is_5_percent_between_20_and_250_ms(remaining, margin):
    assert answer_margin_s(remaining) == pytest.approx(margin)


async def test_every_deadline_answer_is_the_daemons_own_with_what_was_spent(live):
    _, _, stub = await live(SLOW)
    for i in range(4):  # 2 s deadlines: a 100 ms margin, beyond the event-loop lag of a loaded CI machine
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Complete(
                pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=f"think hard {i}")]), timeout=2.0
            )
        err = raised.value
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The caller's own timer says "Deadline Exceeded" with no details; the daemon's answer says what it did.
        assert (err.details() or "").startswith("deadline exceeded after 1 attempt ("), err.details()
        assert "grpc-status-details-bin" in dict(err.trailing_metadata() or ())
