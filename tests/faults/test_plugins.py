"""A provider plugin that raises or answers the wrong type: the request fails cleanly, naming the provider.

Strategies that raise or return the wrong type are in tests/server/test_errors.py. A
provider that hangs is named in the deadline answer, and stopped earlier by
plugins.timeouts.provider_ms when it is set.
"""

from __future__ import annotations

import time

import grpc
import grpc.aio
import pytest
from faultkit import gauge_config, user

from policyd.v1 import policyd_pb2 as pb


@pytest.mark.parametrize("behaviour", ["raise", "wrong-type"])
async def test_a_failing_provider_plugin_is_a_failed_attempt_naming_it_and_the_daemon_goes_on(
    live, gauge_host, gauge, behaviour, caplog
):
    config = gauge_config().replace("delay_s: 0.0,", f"delay_s: 0.0, behaviour: {behaviour},")
    _, _, stub = await live(config, host=gauge_host)
    try:
        resp = await stub.Complete(user("hi"), timeout=5)
    except grpc.aio.AioRpcError as exc:
        pytest.fail(f"{exc.code()}: {exc.details()}")
    assert resp.status == pb.OUTCOME_STATUS_UPSTREAM_FAILED
    [attempt] = resp.attempts
    assert attempt.error.startswith("provider 'g' (plugin gauge-test test) raised "), attempt.error
    assert "sk-canary-plugin-secret" not in attempt.error, "the exception's message stays in the log"
    assert len(gauge.calls) == 1
    again = await stub.Explain(user("still serving"), timeout=5)
    assert again.explanation.rule == "one"


async def test_a_hanging_provider_is_named_with_its_model_and_plugin_in_the_deadline_answer(live, gauge_host, gauge):
    _, _, stub = await live(gauge_config(delay_s=30.0), host=gauge_host)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Complete(user("hang"), timeout=1)
    err = raised.value
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "last: gpt-oss-120b: timed out after" in (err.details() or "")
    assert "waiting for provider 'g' (plugin gauge-test test)" in (err.details() or "")


async def test_a_provider_past_its_plugin_limit_is_a_failed_attempt_long_before_the_deadline(live, gauge_host, gauge):
    config = gauge_config(delay_s=30.0, extra="plugins: {per_plugin: {gauge-test: {provider_ms: 300}}}")
    _, _, stub = await live(config, host=gauge_host)
    started = time.monotonic()
    resp = await stub.Complete(user("hang"), timeout=10)

    assert time.monotonic() - started < 2, "stopped at the plugin's limit, not the 10 s deadline"
    assert resp.status == pb.OUTCOME_STATUS_UPSTREAM_FAILED
    [attempt] = resp.attempts
    assert (
        "waiting for provider 'g' (plugin gauge-test test) (its limit: plugins.timeouts.provider_ms)" in attempt.error
    )
