"""The fleet ledger's queries on PostgreSQL: reports, spend and the same stats as the local ledger."""

from __future__ import annotations

import time
from typing import Any

from policyd.errors import InvalidArgument, NotFound
from policyd.ledger.stats import DIMENSIONS, StatsQuery, StatsRow
from policyd.ledger.store import Report


async def apply_report(pool: Any, report: Report) -> bool:
    scoped = "" if report.tenant is None else " AND tenant = $2"
    args: list[Any] = [report.request_id] + ([] if report.tenant is None else [report.tenant])
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT replica, seq, reported_success, reported_score, reported_note FROM outcomes"
            f" WHERE request_id = $1{scoped} ORDER BY ts DESC LIMIT 1 FOR UPDATE",
            *args,
        )
        if row is None:
            raise NotFound(f"request {report.request_id!r} is not in the ledger")
        if (row[2], row[3], row[4]) == (int(report.success), report.score, report.note):
            return False
        await conn.execute(
            "UPDATE outcomes SET reported_success = $1, reported_score = $2, reported_note = $3, reported_at = $4"
            " WHERE replica = $5 AND seq = $6",
            int(report.success),
            report.score,
            report.note,
            time.time(),
            row[0],
            row[1],
        )
        return True


async def spent_usd(pool: Any, since: float, tenant: str | None, policy: str | None) -> float:
    where, args = ["ts >= $1"], list[Any]([since])
    for column, value in (("tenant", tenant), ("policy", policy)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    value = await pool.fetchval(f"SELECT COALESCE(SUM(cost_usd), 0) FROM outcomes WHERE {' AND '.join(where)}", *args)
    return float(value)


_SUMS = """COUNT(*), SUM(COALESCE(reported_success, default_success)), SUM((reported_success IS NOT NULL)::int),
    SUM(cost_usd), SUM(saved_usd), SUM(tokens_saved)::bigint, SUM(escalated), SUM(validations),
    SUM(validations_passed), SUM(attempts), SUM(failed_attempts),
    percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms), percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms)"""


async def pg_stats(pool: Any, query: StatsQuery) -> list[StatsRow]:
    """The same figures as :func:`policyd.ledger.stats.compute`, over the whole fleet (nearest-rank percentiles)."""
    for i, dim in enumerate(query.group_by):
        if dim not in DIMENSIONS:
            raise InvalidArgument(f"group_by[{i}]", f"unknown dimension {dim!r} (known: {', '.join(DIMENSIONS)})")
    if query.window_s < 0:
        raise InvalidArgument("window_seconds", f"must not be negative (got {query.window_s})")
    columns = [DIMENSIONS[d] for d in query.group_by]
    where, args = ["TRUE"], list[Any]()
    if query.window_s:
        args.append((time.time() if query.now is None else query.now) - query.window_s)
        where.append(f"ts >= ${len(args)}")
    for column, value in (("tenant", query.tenant), ("policy", query.policy)):
        if value:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    keys = ", ".join(columns)
    group = f"GROUP BY {keys}" if columns else ""
    sql = f"SELECT {keys + ', ' if columns else ''}{_SUMS} FROM outcomes WHERE {' AND '.join(where)} {group}"
    n = len(columns)
    rows: dict[tuple[str, ...], StatsRow] = {}
    for rec in await pool.fetch(sql, *args):
        if rec[n] == 0:
            continue
        key = tuple(rec[:n])
        requests, successes, reported, cost, saved, tsaved, escal, vals, passed, attempts, failed, p50, p95 = rec[n:]
        rows[key] = StatsRow(
            group=dict(zip(query.group_by, key, strict=True)),
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
            latency_p50_ms=p50,
            latency_p95_ms=p95,
        )
    return [rows[k] for k in sorted(rows)]
