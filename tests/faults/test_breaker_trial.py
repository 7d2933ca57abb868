"""The caller whose calls open (or re-open) the circuit sees the upstream's own error, not "circuit open"."""

from __future__ import annotations

from faultkit import user
from upstreams import openai_policy

from policyd.v1 import policyd_pb2 as pb
from tests.plugins.fake_upstream import Json

DOWN = Json({"error": {"message": "service unavailable"}}, 503)


async def test_the_call_that_opens_the_circuit_reports_the_upstream_503(live, fake):
    fake.default = DOWN
    _, _, stub = await live(openai_policy(fake.url, max_attempts=3, breaker=2))
    resp = await stub.Complete(user("first", cache_mode=pb.CACHE_MODE_BYPASS), timeout=10)

    [attempt] = resp.attempts
    assert resp.status == pb.OUTCOME_STATUS_UPSTREAM_FAILED
    assert attempt.error.startswith("up: HTTP 503") and "circuit open after" not in attempt.error
    assert "(after 2 attempts; the circuit opened)" in attempt.error
    assert len(fake.seen) == 2, "no third attempt against an open circuit"

    later = await stub.Complete(user("second", cache_mode=pb.CACHE_MODE_BYPASS), timeout=10)
    assert "circuit open after 2 consecutive failures" in later.attempts[0].error
    assert len(fake.seen) == 2, "others are refused without a call while the circuit is open"


async def test_a_single_non_retried_failure_says_one_attempt(live, fake):
    fake.default = Json({"error": {"message": "bad request"}}, 400)
    _, _, stub = await live(openai_policy(fake.url, max_attempts=3))
    resp = await stub.Complete(user("bad", cache_mode=pb.CACHE_MODE_BYPASS), timeout=10)
    assert "attempts" not in resp.attempts[0].error
