"""Cost per successful outcome and its neighbours, grouped, over a time window.

A request counts as a success when the caller reported it successful, or, without a
report, when its status was accepted or accepted-unvalidated. Every attempt's USD
counts, failed and escalated ones included, so the headline figure is
``total USD / successes`` of the group.
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass, field

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
    latencies_ms: list[float] = field(default_factory=list, repr=False)

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

    @property
    def latency_p50_ms(self) -> float:
        return percentile(self.latencies_ms, 0.50)

    @property
    def latency_p95_ms(self) -> float:
        return percentile(self.latencies_ms, 0.95)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (sorted here); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def compute(conn: sqlite3.Connection, query: StatsQuery) -> list[StatsRow]:
    for i, dim in enumerate(query.group_by):
        if dim not in DIMENSIONS:
            raise InvalidArgument(f"group_by[{i}]", f"unknown dimension {dim!r} (known: {', '.join(DIMENSIONS)})")
    if query.window_s < 0:
        raise InvalidArgument("window_seconds", f"must not be negative (got {query.window_s})")
    columns = [DIMENSIONS[d] for d in query.group_by]
    where, args = ["1 = 1"], list[object]()
    if query.window_s:
        where.append("ts >= ?")
        args.append((time.time() if query.now is None else query.now) - query.window_s)
    for column, value in (("tenant", query.tenant), ("policy", query.policy)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    select = ", ".join(
        [
            *columns,
            "COALESCE(reported_success, default_success)",
            "reported_success IS NOT NULL",
            "cost_usd, saved_usd, tokens_saved, escalated, validations, validations_passed",
            "attempts, failed_attempts, latency_ms",
        ]
    )
    rows: dict[tuple[str, ...], StatsRow] = {}
    n = len(columns)
    for rec in conn.execute(f"SELECT {select} FROM outcomes WHERE {' AND '.join(where)}", args):
        key = tuple(rec[:n])
        row = rows.get(key)
        if row is None:
            row = rows[key] = StatsRow(group=dict(zip(query.group_by, key, strict=True)))
        success, reported, cost, saved, tsaved, escalated, vals, passed, attempts, failed, latency = rec[n:]
        row.requests += 1
        row.successes += int(success)
        row.reported += int(reported)
        row.total_cost_usd += cost
        row.saved_usd += saved
        row.tokens_saved += tsaved
        row.escalations += int(escalated)
        row.validations += vals
        row.validations_passed += passed
        row.attempts += attempts
        row.failed_attempts += failed
        row.latencies_ms.append(latency)
    return [rows[k] for k in sorted(rows)]
