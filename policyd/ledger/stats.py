"""Cost per successful outcome and its neighbours, grouped, over a time window.

A request counts as a success when the caller reported it successful, or, without a
report, when its status was accepted or accepted-unvalidated. Every attempt's USD
counts, failed and escalated ones included, so the headline figure is
``total USD / successes`` of the group.

Embed requests are kept apart: a query counts completions or embeddings, never both
(``StatsQuery.embeddings``), so cheap embedding calls never dilute the cost per
successful completion.
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass

from policyd.embedding import EMBED_STRATEGY
from policyd.errors import InvalidArgument

DIMENSIONS: dict[str, str] = {
    "policy": "policy",
    "tenant": "tenant",
    "task": "task",
    "model": "final_model",
    "strategy": "strategy",
}
"""Group dimension → column. ``model`` is the model of the final answer."""


@dataclass(frozen=True)
class StatsQuery:
    window_s: float = 0.0
    """Only outcomes of the last ``window_s`` seconds; 0 is all time."""
    group_by: tuple[str, ...] = ()
    tenant: str = ""
    policy: str = ""
    now: float | None = None
    embeddings: bool = False
    """Embed requests (plans with ``strategy: embed``) only; False: completions only. They are never mixed."""


@dataclass
class StatsRow:
    group: dict[str, str]
    requests: int = 0
    successes: int = 0
    reported: int = 0
    total_cost_usd: float = 0.0
    saved_usd: float = 0.0
    tokens_saved: int = 0
    escalations: int = 0
    validations: int = 0
    validations_passed: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    """Nearest-rank percentiles of request latency."""

    @property
    def cost_per_success_usd(self) -> float:
        return self.total_cost_usd / self.successes if self.successes else 0.0

    @property
    def escalation_rate(self) -> float:
        return self.escalations / self.requests if self.requests else 0.0

    @property
    def validator_accept_rate(self) -> float:
        """Accepted or repaired verdicts over all verdicts."""
        return self.validations_passed / self.validations if self.validations else 0.0


_SUMS = """COUNT(*), SUM(COALESCE(reported_success, default_success)), SUM(reported_success IS NOT NULL),
    SUM(cost_usd), SUM(saved_usd), SUM(tokens_saved), SUM(escalated), SUM(validations), SUM(validations_passed),
    SUM(attempts), SUM(failed_attempts)"""


def nearest_rank(q: float, count: int) -> int:
    """The 1-based rank of the ``q`` percentile among ``count`` sorted values."""
    return max(1, math.ceil(round(q * count, 9)))


def compute(conn: sqlite3.Connection, query: StatsQuery) -> list[StatsRow]:
    """Sums come from one GROUP BY; percentiles from one pass over latencies sorted by SQLite."""
    for i, dim in enumerate(query.group_by):
        if dim not in DIMENSIONS:
            raise InvalidArgument(f"group_by[{i}]", f"unknown dimension {dim!r} (known: {', '.join(DIMENSIONS)})")
    if query.window_s < 0:
        raise InvalidArgument("window_seconds", f"must not be negative (got {query.window_s})")
    columns = [DIMENSIONS[d] for d in query.group_by]
    where, args = ["strategy = ?" if query.embeddings else "strategy != ?"], list[object]([EMBED_STRATEGY])
    if query.window_s:
        where.append("ts >= ?")
        args.append((time.time() if query.now is None else query.now) - query.window_s)
    for column, value in (("tenant", query.tenant), ("policy", query.policy)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    conn.execute("BEGIN")  # one snapshot for both queries while the writer commits
    try:
        return _grouped(conn, query.group_by, columns, " AND ".join(where), args)
    finally:
        conn.execute("COMMIT")


def _grouped(
    conn: sqlite3.Connection, dims: tuple[str, ...], columns: list[str], cond: str, args: list[object]
) -> list[StatsRow]:
    keys = ", ".join(columns)
    n = len(columns)
    rows: dict[tuple[str, ...], StatsRow] = {}
    group = f"GROUP BY {keys}" if columns else ""
    for rec in conn.execute(f"SELECT {keys + ', ' if columns else ''}{_SUMS} FROM outcomes WHERE {cond} {group}", args):
        if rec[n] == 0:
            continue  # no grouping over no rows still yields one row of NULLs
        key = tuple(rec[:n])
        requests, successes, reported, cost, saved, tsaved, escal, vals, passed, attempts, failed = rec[n:]
        rows[key] = StatsRow(
            group=dict(zip(dims, key, strict=True)),
            requests=requests,
            successes=successes,
            reported=reported,
            total_cost_usd=cost,
            saved_usd=saved,
            tokens_saved=tsaved,
            escalations=escal,
            validations=vals,
            validations_passed=passed,
            attempts=attempts,
            failed_attempts=failed,
        )
    order = f"{keys}, latency_ms" if columns else "latency_ms"
    current: tuple[str, ...] | None = None
    rank = 0
    for rec in conn.execute(
        f"SELECT {keys + ', ' if columns else ''}latency_ms FROM outcomes WHERE {cond} ORDER BY {order}", args
    ):
        key = tuple(rec[:n])
        rank = rank + 1 if key == current else 1
        current = key
        row = rows[key]
        if rank == nearest_rank(0.50, row.requests):
            row.latency_p50_ms = rec[n]
        if rank == nearest_rank(0.95, row.requests):
            row.latency_p95_ms = rec[n]
    return [rows[k] for k in sorted(rows)]
