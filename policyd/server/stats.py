"""ReportOutcome and GetStats: protobuf ⇄ the ledger's domain types."""

from __future__ import annotations

from dataclasses import replace

from policyd.daemon import Daemon
from policyd.errors import InvalidArgument
from policyd.ledger.ledger import Ledger
from policyd.ledger.stats import StatsQuery, StatsRow
from policyd.ledger.store import Report
from policyd.v1 import policyd_pb2 as pb

GROUPS = {
    pb.STATS_GROUP_POLICY: "policy",
    pb.STATS_GROUP_TENANT: "tenant",
    pb.STATS_GROUP_TASK: "task",
    pb.STATS_GROUP_MODEL: "model",
    pb.STATS_GROUP_STRATEGY: "strategy",
}


def query_from_proto(msg: pb.GetStatsRequest) -> StatsQuery:
    """``STATS_GROUP_UNSPECIFIED`` entries are ignored; unknown values keep their number."""
    group_by = tuple(GROUPS.get(g, str(g)) for g in msg.group_by if g != pb.STATS_GROUP_UNSPECIFIED)
    return StatsQuery(window_s=float(msg.window_seconds), group_by=group_by, tenant=msg.tenant, policy=msg.policy)


def row_to_proto(row: StatsRow) -> pb.StatsRow:
    return pb.StatsRow(
        group=row.group,
        requests=row.requests,
        successes=row.successes,
        total_cost_usd=row.total_cost_usd,
        cost_per_success_usd=row.cost_per_success_usd,
        saved_usd=row.saved_usd,
        escalation_rate=row.escalation_rate,
        validator_accept_rate=row.validator_accept_rate,
        latency_p50_ms=row.latency_p50_ms,
        latency_p95_ms=row.latency_p95_ms,
        escalations=row.escalations,
        validations=row.validations,
        reported=row.reported,
        attempts=row.attempts,
        failed_attempts=row.failed_attempts,
        tokens_saved=row.tokens_saved,
    )


class LedgerStats:
    """The servicer's ``stats`` injection point, served by the daemon's ledger."""

    def __init__(self, ledger: Ledger, daemon: Daemon) -> None:
        self.ledger = ledger
        self.daemon = daemon

    async def report(self, msg: pb.ReportOutcomeRequest, tenant: str | None = None) -> pb.ReportOutcomeResponse:
        """``tenant``: only that tenant's outcomes may be reported on (None: any)."""
        if not msg.HasField("success"):  # an unset proto3 bool would read as a failure
            raise InvalidArgument("success", "is required: true when the answer served its purpose, false when not")
        score = msg.score if msg.HasField("score") else None
        report = Report(request_id=msg.request_id, success=msg.success, score=score, note=msg.note, tenant=tenant)
        return pb.ReportOutcomeResponse(changed=await self.ledger.report(report))

    async def stats(self, msg: pb.GetStatsRequest) -> pb.GetStatsResponse:
        query = query_from_proto(msg)
        rows = await self.ledger.stats(query)
        embedding_rows = await self.ledger.stats(replace(query, embeddings=True))
        return pb.GetStatsResponse(
            rows=[row_to_proto(r) for r in rows],
            embedding_rows=[row_to_proto(r) for r in embedding_rows],
            policy_version=self.daemon.config.version,
        )


def stats_service(daemon: Daemon) -> LedgerStats | None:
    return LedgerStats(daemon.ledger, daemon) if daemon.ledger is not None else None
