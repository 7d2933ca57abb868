"""Stats arithmetic on hand-made outcomes: windows, verdicts, cache savings, percentiles."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from policyd.errors import InvalidArgument
from policyd.ledger.ledger import Ledger, read_stats
from policyd.ledger.records import finished
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
        ledger.writer.enqueue(finished(request(o.request_id), o, now=NOW - 3600 * i))
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
            ledger.writer.enqueue(finished(request(o.request_id), o))
    rows = {r.group["tenant"]: r for r in await ledger.stats(StatsQuery(group_by=("tenant",)))}
    assert (rows["t"].latency_p50_ms, rows["t"].latency_p95_ms) == (50, 95)
    assert (rows["u"].latency_p50_ms, rows["u"].latency_p95_ms) == (3, 5)
    assert await ledger.stats(StatsQuery(tenant="nobody")) == []
    await ledger.aclose()


async def test_writer_commits_a_full_batch_without_waiting_for_the_interval(tmp_path: Path):
    ledger = Ledger(tmp_path, LedgerSettings(flush_interval_ms=60_000, max_batch=3))
    for i in range(3):
        o = outcome(f"x{i}", OutcomeStatus.ACCEPTED_UNVALIDATED, [attempt(0, AttemptRole.ANSWER, "m", 0.1)], 1)
        ledger.writer.enqueue(finished(request(o.request_id), o))
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
        ledger.writer.enqueue(finished(request(o.request_id), o))
        for _ in range(500):
            if ledger.writer.committed_records == round_ + 1:
                break
            await asyncio.sleep(0.01)
        assert ledger.writer.committed_records == round_ + 1, "the interval alone must commit a waiting record"
    await ledger.aclose()


async def test_a_batch_stores_each_outcome_with_its_own_attempts_and_numbers_on_after_a_reopen(tmp_path: Path):
    """One multi-row INSERT per table per batch: each attempt row names its own outcome, a report
    queued between outcomes of the same batch finds the one before it, and seq keeps counting."""
    from policyd.ledger.store import Report, connect

    ledger = Ledger(tmp_path, LedgerSettings(flush_interval_ms=60_000, max_batch=100_000))
    judged = [
        attempt(0, AttemptRole.DRAFT, "cheap", 0.001, error="upstream 503"),
        attempt(1, AttemptRole.ESCALATE, "strong", 0.01),
        attempt(2, AttemptRole.VALIDATE, "judge", 0.004, verdict=Verdict(kind=VerdictKind.ACCEPT, validator="j")),
    ]
    first = outcome("b1", OutcomeStatus.ACCEPTED, judged, 5)
    second = outcome("b2", OutcomeStatus.ACCEPTED_UNVALIDATED, [attempt(0, AttemptRole.ANSWER, "cheap", 0.002)], 6)
    ledger.writer.enqueue(finished(request("b1"), first, now=NOW))
    report = asyncio.ensure_future(ledger.report(Report("b1", success=False, note="wrong")))
    await asyncio.sleep(0)  # the report is queued
    ledger.writer.enqueue(finished(request("b2"), second, now=NOW + 1))
    assert await report is True
    await ledger.flush()
    await ledger.aclose()
    again = Ledger(tmp_path, LedgerSettings())
    third = outcome("b3", OutcomeStatus.REJECTED, [], 7)
    await again.writer.commit(finished(request("b3"), third, now=NOW + 2))
    await again.aclose()
    conn = connect(again.path, create=False)
    rows = conn.execute(
        "SELECT seq, request_id, ts, models, final_model, escalated, validations, validations_passed, attempts,"
        " failed_attempts, reported_success, reported_note FROM outcomes ORDER BY seq"
    ).fetchall()
    attempts = conn.execute("SELECT outcome_seq, idx, model, verdict, error FROM attempts ORDER BY 1, 2").fetchall()
    conn.close()
    assert rows == [
        (1, "b1", NOW, '["cheap", "strong", "judge"]', "strong", 1, 1, 1, 3, 1, 0, "wrong"),
        (2, "b2", NOW + 1, '["cheap"]', "cheap", 0, 0, 0, 1, 0, None, None),
        (3, "b3", NOW + 2, "[]", "", 0, 0, 0, 0, 0, None, None),
    ]
    assert attempts == [
        (1, 0, "cheap", "", "upstream 503"),
        (1, 1, "strong", "", ""),
        (1, 2, "judge", "accept", ""),
        (2, 0, "cheap", "", ""),
    ]
