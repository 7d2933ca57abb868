"""Metrics recorded for real requests, read from an in-memory metric reader."""

from __future__ import annotations

import math

from policyd.telemetry import semconv as sc
from tests.telemetry.support import points, policy, user


async def test_gen_ai_histograms_use_the_spec_buckets_and_attributes(traced, upstream):
    t = await traced(policy(upstream.base_url))
    resp = await t.stub.Complete(user("write a sort", task="coding"))
    got = points(t.metrics)

    usage = got[sc.METRIC_TOKEN_USAGE]
    assert all(tuple(p.explicit_bounds) == sc.TOKEN_USAGE_BUCKETS for p in usage)
    drafter = {
        p.attributes[sc.GEN_AI_TOKEN_TYPE]: p for p in usage if p.attributes[sc.GEN_AI_REQUEST_MODEL] == "drafter-v1"
    }
    assert (drafter["input"].sum, drafter["output"].sum) == (
        resp.attempts[0].input_tokens,
        resp.attempts[0].output_tokens,
    )
    assert drafter["input"].attributes[sc.GEN_AI_PROVIDER_NAME] == "fixture-http"
    assert drafter["input"].attributes[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert drafter["input"].attributes[sc.GEN_AI_RESPONSE_MODEL] == "drafter-v1-0915"

    duration = got[sc.METRIC_OPERATION_DURATION]
    assert all(tuple(p.explicit_bounds) == sc.OPERATION_DURATION_BUCKETS for p in duration)
    assert sum(p.count for p in duration) == 3
    assert all(sc.ERROR_TYPE not in p.attributes for p in duration)


async def test_outcome_cost_escalation_and_verdict_counters(traced, upstream):
    t = await traced(policy(upstream.base_url))
    resp = await t.stub.Complete(user("write a sort", task="coding"))
    await t.stub.Complete(user("hello"))
    got = points(t.metrics)

    outcomes = {
        (p.attributes[sc.POLICYD_RULE], p.attributes[sc.POLICYD_OUTCOME]): p.value for p in got[sc.METRIC_OUTCOMES]
    }
    assert outcomes == {("checked-coding", "accepted-unvalidated"): 1, ("rest", "accepted-unvalidated"): 1}
    coding_cost = sum(p.value for p in got[sc.METRIC_COST] if p.attributes[sc.POLICYD_RULE] == "checked-coding")
    assert math.isclose(coding_cost, resp.total_cost_usd, rel_tol=1e-9)
    (escalation,) = got[sc.METRIC_ESCALATIONS]
    assert (escalation.value, escalation.attributes[sc.POLICYD_MODEL]) == (1, "claude-opus-4.1")
    (verdict,) = got[sc.METRIC_VERDICTS]
    assert verdict.value == 1
    assert (verdict.attributes[sc.POLICYD_VERDICT], verdict.attributes[sc.POLICYD_VALIDATOR]) == (
        "reject",
        "llm-judge",
    )
    misses = sum(p.value for p in got[sc.METRIC_CACHE_MISSES])
    assert misses == 4  # every call was cacheable and none was answered from a cache
    assert sc.METRIC_CACHE_HITS not in got


async def test_failed_call_duration_carries_error_type(traced, upstream):
    t = await traced(policy(upstream.base_url))
    await t.stub.Complete(user("FAIL-UPSTREAM now", task="coding"))
    failed = [p for p in points(t.metrics)[sc.METRIC_OPERATION_DURATION] if sc.ERROR_TYPE in p.attributes]
    assert [p.attributes[sc.ERROR_TYPE] for p in failed] == ["UpstreamError"]
    assert failed[0].attributes[sc.GEN_AI_REQUEST_MODEL] == "drafter-v1"
