"""Cost per successful outcome through a live daemon: every attempt's USD over the successes."""

from __future__ import annotations

import math

import grpc
import pytest

from policyd.v1 import policyd_pb2 as pb

MIXED = """
version: mixed-1
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
models:
  qwen3-coder-480b-a35b: {options: {simulated: {error_rate: 1.0}}}
  kimi-k2: {options: {simulated: {error_rate: 1.0}}}
policies:
  default:
    rules:
      - name: plain
        plan: {strategy: single, params: {model: gpt-oss-120b}}
  flaky:
    rules:
      - name: escalates
        plan: {strategy: fallback, params: {models: [qwen3-coder-480b-a35b, glm-4.5]}}
  broken:
    rules:
      - name: always-fails
        plan: {strategy: single, params: {model: kimi-k2}}
"""


def user(text: str, **kw: object) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)


async def by_policy(stub: object) -> dict[str, pb.StatsRow]:
    resp = await stub.GetStats(pb.GetStatsRequest(group_by=[pb.STATS_GROUP_POLICY]))  # type: ignore[attr-defined]
    return {row.group["policy"]: row for row in resp.rows}


async def test_cost_per_success_counts_failed_attempts_escalations_and_failed_requests(live):
    _, _, stub = await live(MIXED)
    plain = [await stub.Complete(user(f"question {i}", request_id=f"p{i}")) for i in range(3)]
    flaky = [await stub.Complete(user(f"task {i}", policy="flaky", request_id=f"f{i}")) for i in range(2)]
    broken = await stub.Complete(user("doomed", policy="broken", request_id="b0"))

    for resp in flaky:  # the first model failed (no cost), the second answered as an escalation
        assert [(a.model, bool(a.error)) for a in resp.attempts] == [
            ("qwen3-coder-480b-a35b", True),
            ("glm-4.5", False),
        ]
        assert resp.attempts[1].role == pb.ATTEMPT_ROLE_ESCALATE
    assert broken.status == pb.OUTCOME_STATUS_UPSTREAM_FAILED

    rows = await by_policy(stub)
    plain_usd = sum(r.total_cost_usd for r in plain)
    flaky_usd = sum(r.total_cost_usd for r in flaky)
    assert (rows["default"].requests, rows["default"].successes) == (3, 3)
    assert math.isclose(rows["default"].total_cost_usd, plain_usd, rel_tol=1e-9)
    assert math.isclose(rows["default"].cost_per_success_usd, plain_usd / 3, rel_tol=1e-9)
    assert rows["default"].escalation_rate == 0.0

    flaky_row = rows["flaky"]
    assert (flaky_row.requests, flaky_row.successes, flaky_row.escalations) == (2, 2, 2)
    assert flaky_row.escalation_rate == 1.0
    assert (flaky_row.attempts, flaky_row.failed_attempts) == (4, 2)
    assert math.isclose(flaky_row.cost_per_success_usd, flaky_usd / 2, rel_tol=1e-9)

    broken_row = rows["broken"]
    assert (broken_row.requests, broken_row.successes, broken_row.failed_attempts) == (1, 0, 1)
    assert broken_row.cost_per_success_usd == 0.0  # no success: undefined, reported as 0

    total = await stub.GetStats(pb.GetStatsRequest())
    (row,) = total.rows
    assert (row.requests, row.successes) == (6, 5)
    assert math.isclose(row.cost_per_success_usd, (plain_usd + flaky_usd) / 5, rel_tol=1e-9)
    assert total.policy_version == "mixed-1"


async def test_reported_failure_moves_the_figure_and_reports_are_idempotent(live):
    _, _, stub = await live(MIXED)
    answers = [await stub.Complete(user(f"question {i}", request_id=f"q{i}")) for i in range(4)]
    spent = sum(a.total_cost_usd for a in answers)
    before = (await by_policy(stub))["default"]
    assert math.isclose(before.cost_per_success_usd, spent / 4, rel_tol=1e-9)

    first = await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id="q0", success=False, score=0.1, note="wrong"))
    assert first.changed is True
    after = (await by_policy(stub))["default"]
    assert (after.successes, after.reported) == (3, 1)
    assert math.isclose(after.cost_per_success_usd, spent / 3, rel_tol=1e-9)  # the failure's cost stays in

    repeat = await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id="q0", success=False, score=0.1, note="wrong"))
    assert repeat.changed is False
    assert (await by_policy(stub))["default"].successes == 3

    revised = await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id="q0", success=True, score=0.1, note="wrong"))
    assert revised.changed is True
    assert (await by_policy(stub))["default"].successes == 4


async def test_a_reported_success_overrides_a_failed_status(live):
    _, _, stub = await live(MIXED)
    await stub.Complete(user("doomed", policy="broken", request_id="b1"))
    assert (await by_policy(stub))["broken"].successes == 0
    await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id="b1", success=True))
    assert (await by_policy(stub))["broken"].successes == 1


async def test_report_right_after_the_reply_finds_the_outcome_still_queued(live):
    slow_batches = MIXED + "ledger: {flush_interval_ms: 60000, max_batch: 100000}\n"
    daemon, _, stub = await live(slow_batches)
    for i in range(5):
        await stub.Complete(user(f"q{i}", request_id=f"late{i}"))
    assert daemon.ledger.writer.committed_records == 0, "nothing should be committed before the interval"
    resp = await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id="late4", success=False))
    assert resp.changed is True
    assert daemon.ledger.writer.committed_records == 5


@pytest.mark.parametrize(
    ("report", "code", "detail"),
    [
        (pb.ReportOutcomeRequest(request_id="never-seen", success=True), grpc.StatusCode.NOT_FOUND, "never-seen"),
        (pb.ReportOutcomeRequest(success=True), grpc.StatusCode.INVALID_ARGUMENT, "request_id:"),
        (pb.ReportOutcomeRequest(request_id="x", success=True, score=1.5), grpc.StatusCode.INVALID_ARGUMENT, "score:"),
        (pb.ReportOutcomeRequest(request_id="x", note="no verdict"), grpc.StatusCode.INVALID_ARGUMENT, "success:"),
    ],
    ids=["unknown-id", "no-id", "score-out-of-range", "no-success"],
)
async def test_bad_reports_are_refused_with_a_clear_status(live, report, code, detail):
    _, _, stub = await live(MIXED)
    await stub.Complete(user("q", request_id="x"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ReportOutcome(report)
    assert info.value.code() == code
    assert detail in info.value.details()


async def test_a_report_without_success_changes_nothing(live):
    _, _, stub = await live(MIXED)
    await stub.Complete(user("q", request_id="x"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id="x"))
    assert info.value.details() == "success: is required: true when the answer served its purpose, false when not"
    [row] = (await stub.GetStats(pb.GetStatsRequest())).rows
    assert (row.requests, row.successes, row.reported) == (1, 1, 0)


async def test_stats_group_by_model_tenant_task_and_strategy_with_filters(live):
    _, _, stub = await live(MIXED)
    await stub.Complete(user("a", tenant="acme", task="chat"))
    await stub.Complete(user("b", tenant="acme", task="chat", policy="flaky"))
    await stub.Complete(user("c", tenant="globex", task="coding"))
    resp = await stub.GetStats(
        pb.GetStatsRequest(
            group_by=[pb.STATS_GROUP_TENANT, pb.STATS_GROUP_MODEL, pb.STATS_GROUP_STRATEGY, pb.STATS_GROUP_TASK]
        )
    )
    groups = sorted(tuple(r.group[k] for k in ("tenant", "model", "strategy", "task")) for r in resp.rows)
    assert groups == [
        ("acme", "glm-4.5", "fallback", "chat"),
        ("acme", "gpt-oss-120b", "single", "chat"),
        ("globex", "gpt-oss-120b", "single", "coding"),
    ]
    only = await stub.GetStats(pb.GetStatsRequest(tenant="acme", policy="flaky"))
    assert [r.requests for r in only.rows] == [1]
    recent = await stub.GetStats(pb.GetStatsRequest(window_seconds=3600))
    assert recent.rows[0].requests == 3
    assert recent.rows[0].latency_p50_ms <= recent.rows[0].latency_p95_ms
