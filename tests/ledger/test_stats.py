"""Stats arithmetic on hand-made outcomes: windows, verdicts, cache savings, percentiles."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from policyd.errors import InvalidArgument
from policyd.ledger.ledger import Ledger, read_stats
from policyd.ledger.records import outcome_record
from policyd.ledger.settings import LedgerSettings
from policyd.ledger.stats import StatsQuery
from policyd.types import (
    Attempt,
    AttemptRole,
    Effort,
    Explanation,
    Message,
    Outcome,
    OutcomeStatus,
    Request,
    Role,
    Verdict,
    VerdictKind,
)

NOW = 1_800_000_000.0


def attempt(i: int, role: AttemptRole, model: str, usd: float, **kw: object) -> Attempt:
    return Attempt(index=i, role=role, model=model, provider="simulated", effort=Effort.OFF, cost_usd=usd, **kw)


def outcome(rid: str, status: OutcomeStatus, attempts: list[Attempt], latency_ms: float, tenant: str = "t") -> Outcome:
    return Outcome(
        request_id=rid,
        status=status,
        output=Message(role=Role.ASSISTANT, content="x"),
        attempts=tuple(attempts),
        explanation=Explanation(policy="p", rule="r", strategy="draft-validate", reason=""),
        total_cost_usd=sum(a.cost_usd for a in attempts),
        saved_usd=sum(a.saved_usd for a in attempts),
        tenant=tenant,
        latency_ms=latency_ms,
    )


def request(rid: str) -> Request:
    return Request(request_id=rid, messages=(Message(role=Role.USER, content="q"),))


async def fill(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path, LedgerSettings(flush_interval_ms=10))
    accept = Verdict(kind=VerdictKind.ACCEPT, validator="judge")
    reject = Verdict(kind=VerdictKind.REJECT, validator="judge")
    repair = Verdict(kind=VerdictKind.REPAIR, validator="judge")
    rows = [
        # accepted after one validation
        outcome("a", OutcomeStatus.ACCEPTED, [
            attempt(0, AttemptRole.DRAFT, "cheap", 0.001),
            attempt(1, AttemptRole.VALIDATE, "judge", 0.004, verdict=accept),
        ], 100),
        # rejected, escalated, the escalation accepted by repair
        outcome("b", OutcomeStatus.ACCEPTED, [
            attempt(0, AttemptRole.DRAFT, "cheap", 0.001),
            attempt(1, AttemptRole.VALIDATE, "judge", 0.004, verdict=reject),
            attempt(2, AttemptRole.ESCALATE, "strong", 0.010),
            attempt(3, AttemptRole.VALIDATE, "judge", 0.004, verdict=repair),
        ], 300),
        # rejected to the end: paid for, no success
        outcome("c", OutcomeStatus.REJECTED, [
            attempt(0, AttemptRole.DRAFT, "cheap", 0.001),
            attempt(1, AttemptRole.VALIDATE, "judge", 0.004, verdict=reject),
        ], 200),
        # served from the cache: free, with what it saved
        outcome("d", OutcomeStatus.ACCEPTED_UNVALIDATED, [
            attempt(0, AttemptRole.ANSWER, "cheap", 0.0, cached=True, saved_usd=0.002),
        ], 5, tenant="u"),
    ]  # fmt: skip
    for i, o in enumerate(rows):
        ledger.writer.enqueue(outcome_record(request(o.request_id), o, now=NOW - 3600 * i))
    await ledger.flush()
    return ledger


async def test_cost_per_success_counts_validations_rejections_and_escalations(tmp_path: Path):
    ledger = await fill(tmp_path)
    (row,) = await ledger.stats(StatsQuery())
    assert (row.requests, row.successes, row.escalations) == (4, 3, 1)
    assert math.isclose(row.total_cost_usd, 0.005 + 0.019 + 0.005, rel_tol=1e-12)
    assert math.isclose(row.cost_per_success_usd, 0.029 / 3, rel_tol=1e-12)
    assert math.isclose(row.saved_usd, 0.002, rel_tol=1e-12)
    assert (row.validations, row.validations_passed) == (4, 2)
    assert row.validator_accept_rate == 0.5  # accept and repair pass; two rejects
    assert row.escalation_rate == 0.25
    assert (row.latency_p50_ms, row.latency_p95_ms) == (100, 300)
    await ledger.aclose()


async def test_window_tenant_and_model_grouping(tmp_path: Path):
    ledger = await fill(tmp_path)
    recent = read_stats(ledger.path, StatsQuery(window_s=2.5 * 3600, now=NOW))
    assert recent[0].requests == 3  # "d" finished three hours ago
    by_model = {tuple(r.group.values()): r for r in read_stats(ledger.path, StatsQuery(group_by=("model",)))}
    assert set(by_model) == {("cheap",), ("strong",)}  # the answer's model, never the judge's
    assert by_model[("strong",)].successes == 1
    (u,) = read_stats(ledger.path, StatsQuery(tenant="u"))
    assert (u.requests, u.total_cost_usd, u.cost_per_success_usd) == (1, 0.0, 0.0)
    with pytest.raises(InvalidArgument, match="group_by\\[0\\]"):
        read_stats(ledger.path, StatsQuery(group_by=("colour",)))
    await ledger.aclose()


async def test_latency_percentiles_are_nearest_rank_per_group(tmp_path: Path):
    ledger = Ledger(tmp_path, LedgerSettings())
    for i in range(1, 101):  # tenant "t": 1..100 ms; tenant "u": 1..5 ms
        for tenant in ("t", "u") if i <= 5 else ("t",):
            o = outcome(f"{tenant}{i}", OutcomeStatus.ACCEPTED, [], float(i), tenant=tenant)
            ledger.writer.enqueue(outcome_record(request(o.request_id), o))
    rows = {r.group["tenant"]: r for r in await ledger.stats(StatsQuery(group_by=("tenant",)))}
    assert (rows["t"].latency_p50_ms, rows["t"].latency_p95_ms) == (50, 95)
    assert (rows["u"].latency_p50_ms, rows["u"].latency_p95_ms) == (3, 5)
    assert await ledger.stats(StatsQuery(tenant="nobody")) == []
    await ledger.aclose()


async def test_writer_commits_a_full_batch_without_waiting_for_the_interval(tmp_path: Path):
    ledger = Ledger(tmp_path, LedgerSettings(flush_interval_ms=60_000, max_batch=3))
    for i in range(3):
        o = outcome(f"x{i}", OutcomeStatus.ACCEPTED_UNVALIDATED, [attempt(0, AttemptRole.ANSWER, "m", 0.1)], 1)
        ledger.writer.enqueue(outcome_record(request(o.request_id), o))
    for _ in range(200):
        if ledger.writer.committed_records == 3:
            break
        await asyncio.sleep(0.01)
    assert (ledger.writer.committed_records, ledger.writer.committed_batches) == (3, 1)
    await ledger.aclose()


async def test_writer_commits_after_the_interval_without_any_flush(tmp_path: Path):
    ledger = Ledger(tmp_path, LedgerSettings(flush_interval_ms=20, max_batch=1000))
    for round_ in range(2):  # the second round starts on an idle writer
        o = outcome(f"y{round_}", OutcomeStatus.ACCEPTED_UNVALIDATED, [attempt(0, AttemptRole.ANSWER, "m", 0.1)], 1)
        ledger.writer.enqueue(outcome_record(request(o.request_id), o))
        for _ in range(500):
            if ledger.writer.committed_records == round_ + 1:
                break
            await asyncio.sleep(0.01)
        assert ledger.writer.committed_records == round_ + 1, "the interval alone must commit a waiting record"
    await ledger.aclose()
