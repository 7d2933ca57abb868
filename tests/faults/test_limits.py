"""Limits through a live daemon: sizes, counts, the concurrency cap, tenants' rates and deadlines."""

from __future__ import annotations

import asyncio
import time

import grpc
import grpc.aio
import pytest
from faultkit import TOKEN_A, TOKEN_B, auth_section, bearer, gauge_config, status_of, until, user

from policyd.config.security import LimitsConfig, RateConfig
from policyd.engine.ratelimit import TenantRateLimiter
from policyd.errors import ResourceExhausted
from policyd.types import Message, Request, Role
from policyd.v1 import policyd_pb2 as pb


async def test_oversized_request_is_refused_at_once_and_the_daemon_keeps_serving(live, gauge_host, gauge):
    _, _, stub = await live(gauge_config(extra="limits: {max_receive_message_bytes: 65536}"), host=gauge_host)
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(user("x" * 100_000), timeout=5)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert time.monotonic() - started < 2 and gauge.calls == []
    assert (await stub.Complete(user("small"), timeout=5)).output.content == "gauged answer"


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="m")] * 10_000), "messages"),
        (user("hi", tools=[pb.Tool(name=f"t{i}") for i in range(300)]), "tools"),
        (user("hi", params=pb.GenerationParams(max_output_tokens=1_000_000)), "params.max_output_tokens"),
    ],
    ids=["10k-messages", "300-tools", "huge-max-output-tokens"],
)
async def test_counts_past_the_limits_are_invalid_argument_naming_the_field(live, gauge_host, gauge, msg, field):
    _, _, stub = await live(gauge_config(), host=gauge_host)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(msg, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith(f"{field}: at most")
    assert gauge.calls == []


async def test_overload_past_the_concurrency_cap_is_resource_exhausted_fast(live, gauge_host, gauge):
    _, _, stub = await live(gauge_config(delay_s=1.0, extra="limits: {max_concurrent_rpcs: 2}"), host=gauge_host)
    slow = [asyncio.ensure_future(stub.Complete(user(f"slow {i}"), timeout=10)) for i in range(2)]
    await until(lambda: gauge.in_flight == 2, 5, "two calls in flight")
    started = time.monotonic()
    codes = await asyncio.gather(*(status_of(stub.Complete(user(f"extra {i}"), timeout=10)) for i in range(5)))
    assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 5
    assert time.monotonic() - started < 0.9, "refused at once, not queued behind the slow calls"
    assert [r.status for r in await asyncio.gather(*slow)] == [pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED] * 2
    assert len(gauge.calls) == 2
    assert (await stub.Complete(user("after"), timeout=10)).output.content == "gauged answer"


async def test_a_tenant_over_its_request_rate_is_refused_and_others_are_not(live, gauge_host, gauge):
    limits = "limits: {rate: {requests_per_minute: 3}, tenants: {team-b: {requests_per_minute: 100}}}"
    _, _, stub = await live(gauge_config(extra=limits) + auth_section(), host=gauge_host)
    codes = [await status_of(stub.Complete(user(f"a{i}"), metadata=bearer(TOKEN_A), timeout=5)) for i in range(5)]
    assert codes == [grpc.StatusCode.OK] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(user("a-again", tenant="team-b"), metadata=bearer(TOKEN_A), timeout=5)
    assert "'team-a' is over its rate limit of 3 requests per minute; retry in" in (info.value.details() or "")
    codes = [await status_of(stub.Complete(user(f"b{i}"), metadata=bearer(TOKEN_B), timeout=5)) for i in range(5)]
    assert codes == [grpc.StatusCode.OK] * 5
    assert len(gauge.calls) == 8, "refused requests never reach the upstream"


def _request(tenant: str, words: int) -> Request:
    return Request(request_id="r", messages=(Message(Role.USER, "word " * words),), tenant=tenant)


async def test_token_rate_settles_real_usage_and_refills_over_time():
    now = [0.0]
    limits = LimitsConfig(rate=RateConfig(tokens_per_minute=600))
    limiter = TenantRateLimiter(clock=lambda: now[0])
    spent = []

    def run(request: Request) -> None:
        """Admit, 'answer' with an attempt that used 700 tokens, settle."""
        from policyd.types import Attempt, AttemptRole, Effort, Outcome, OutcomeStatus

        settle = limiter.take(request, limits)
        spent.append(request)
        attempt = Attempt(0, AttemptRole.ANSWER, "m", "p", Effort.OFF, input_tokens=400, output_tokens=300)
        outcome = Outcome(request.request_id, OutcomeStatus.ACCEPTED_UNVALIDATED, None, (attempt,), None)  # type: ignore[arg-type]
        assert settle is not None
        settle(outcome)

    run(_request("t", 10))  # reserves ~its input, settles 700: the bucket is at -100
    with pytest.raises(ResourceExhausted, match=r"600 tokens per minute; retry in 1[0-9] s"):
        run(_request("t", 10))
    run(_request("other", 10))  # another tenant has its own bucket
    now[0] = 20.0  # 20 s refill 200 tokens: back above the next reservation
    run(_request("t", 10))
    assert len(spent) == 3


async def test_a_request_without_a_deadline_gets_the_default_and_a_long_one_is_cut_to_the_maximum(
    live, gauge_host, gauge
):
    defaults = "defaults: {deadline_ms: 300, max_deadline_ms: 600}"
    _, _, stub = await live(gauge_config(delay_s=30) + defaults, host=gauge_host)
    for timeout, bound in ((None, 0.3), (60.0, 0.6)):
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Complete(user(f"no hurry {timeout}"), timeout=timeout)
        elapsed = time.monotonic() - started
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert bound - 0.05 < elapsed < bound + 1.5, (timeout, elapsed)
    assert gauge.cancelled == 2 and gauge.finished == 0, "the upstream calls were aborted, not left running"
