"""The fleet's ledger on PostgreSQL, fed from each daemon's local ledger, which is its spool.

Every daemon keeps recording exactly as the embedded default does (``policyd.ledger``:
SQLite in WAL mode, ``durability: batch`` or ``sync``), so an outcome is acknowledged when
it is on the daemon's disk, whatever PostgreSQL is doing. A shipper task copies the local
``outcomes`` and ``attempts`` rows, in ``seq`` order, in batches, to PostgreSQL, keyed by
(replica, seq): a batch that is sent twice (a crash between the commit and the next read
of the watermark, a kill -9) inserts nothing twice (``ON CONFLICT DO NOTHING``); one that
fails (PostgreSQL down) stays in the spool and goes with the next shipment. The replica
id lives in the data directory, so a restarted daemon resumes its own spool where
PostgreSQL's copy ends.

ReportOutcome, GetStats and the budgets' seed read PostgreSQL (after shipping what is
waiting), so any replica answers for the whole fleet: a report for a request another
replica answered finds it. While PostgreSQL is down, GetStats answers UNAVAILABLE (the
caller retries), budgets seed from the local ledger, and a report on a request this
daemon answered is kept in its ledger file and applied, in order, after the outcomes are
shipped (a report on another replica's request is UNAVAILABLE: only PostgreSQL knows it).

Schema changes are numbered migrations (:data:`MIGRATIONS`) applied at start under an
advisory lock, so replicas starting together apply each one once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policyd.engine.turn import TurnFinished
from policyd.errors import InvalidArgument, NotFound, Unavailable
from policyd.fleet.pg_queries import apply_report, pg_stats, spent_usd
from policyd.fleet.settings import PostgresSettings
from policyd.fleet.spool import (
    ATTEMPT_COLUMNS,
    OUTCOME_COLUMNS,
    read_spool,
    spool_report,
    spooled_after,
    spooled_reports,
    unspool_report,
)
from policyd.ledger.ledger import Ledger
from policyd.ledger.settings import LedgerSettings
from policyd.ledger.stats import StatsQuery, StatsRow
from policyd.ledger.store import Report

log = logging.getLogger(__name__)

REPLICA_FILE = "fleet-replica-id"
LOCK_ID = 0x706F6C6963796400  # "policyd\\0": the advisory lock migrations run under


MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
CREATE TABLE outcomes (
    replica TEXT NOT NULL, seq BIGINT NOT NULL, request_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    tenant TEXT NOT NULL, policy TEXT NOT NULL, rule TEXT NOT NULL, task TEXT NOT NULL, strategy TEXT NOT NULL,
    policy_version TEXT NOT NULL, models TEXT NOT NULL, final_model TEXT NOT NULL, status TEXT NOT NULL,
    default_success INTEGER NOT NULL, reported_success INTEGER, reported_score DOUBLE PRECISION,
    reported_note TEXT, reported_at DOUBLE PRECISION, cost_usd DOUBLE PRECISION NOT NULL,
    saved_usd DOUBLE PRECISION NOT NULL, tokens_saved BIGINT NOT NULL, input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL, latency_ms DOUBLE PRECISION NOT NULL, cached INTEGER NOT NULL,
    escalated INTEGER NOT NULL, validations INTEGER NOT NULL, validations_passed INTEGER NOT NULL,
    attempts INTEGER NOT NULL, failed_attempts INTEGER NOT NULL, decision_id TEXT NOT NULL, trace_id TEXT NOT NULL,
    PRIMARY KEY (replica, seq)
);
CREATE INDEX outcomes_request_id ON outcomes (request_id);
CREATE INDEX outcomes_ts ON outcomes (ts);
CREATE TABLE attempts (
    replica TEXT NOT NULL, outcome_seq BIGINT NOT NULL, idx INTEGER NOT NULL, role TEXT NOT NULL,
    model TEXT NOT NULL, provider TEXT NOT NULL, effort TEXT NOT NULL, input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL, saved_usd DOUBLE PRECISION NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL, cached INTEGER NOT NULL, verdict TEXT NOT NULL, validator TEXT NOT NULL,
    verdict_reason TEXT NOT NULL, error TEXT NOT NULL,
    PRIMARY KEY (replica, outcome_seq, idx)
);
""",
    ),
)
"""(version, SQL): append, never edit one that shipped."""


def replica_id(data_dir: Path) -> str:
    """This data directory's id in the fleet ledger (made once, kept across restarts)."""
    path = data_dir / REPLICA_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        rid = uuid.uuid4().hex
        path.write_text(rid + "\n", encoding="utf-8")
        return rid


async def migrate(conn: Any) -> list[int]:
    """Apply the migrations this database lacks, in order, once across replicas; returns those applied."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS policyd_schema_migrations"
            " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        done = {r[0] for r in await conn.fetch("SELECT version FROM policyd_schema_migrations")}
        for version, sql in MIGRATIONS:
            if version not in done:
                await conn.execute(sql)
                await conn.execute("INSERT INTO policyd_schema_migrations VALUES ($1, $2)", version, time.time())
                applied.append(version)
    return applied


class PostgresLedger(Ledger):
    """The local ledger (the spool) plus the fleet's copy in PostgreSQL, which answers reads."""

    def __init__(self, data_dir: Path, settings: LedgerSettings | None = None, *, fleet: PostgresSettings) -> None:
        super().__init__(data_dir, settings)
        self.fleet = fleet
        self.replica = replica_id(data_dir)
        self.shipped_seq: int | None = None
        """The highest local seq PostgreSQL holds (None until asked)."""
        self.last_error: str | None = None
        self._pool: Any = None
        self._shipper: asyncio.Task[None] | None = None
        self._ship_lock = asyncio.Lock()
        self._next: asyncio.Future[None] | None = None
        self._reports_spooled = True
        """Reports may wait in the spool (at start: maybe, from before a restart)."""
        self._wake = asyncio.Event()

    # ------------------------------------------------------------ connection

    async def pool(self) -> Any:
        if self._pool is None:
            try:
                import asyncpg
            except ImportError as exc:  # pragma: no cover - the extra is in the image and in dev
                raise Unavailable("fleet.postgres needs the 'asyncpg' package: pip install asyncpg") from exc
            kwargs: dict[str, Any] = {"min_size": 1, "max_size": self.fleet.pool_size, "timeout": self._timeout()}
            password = self.fleet.password()
            if password is not None:
                kwargs["password"] = password
            if self.fleet.tls_ca_file is not None:
                import ssl

                kwargs["ssl"] = ssl.create_default_context(cafile=str(self.fleet.tls_ca_file))
            pool = await asyncpg.create_pool(self.fleet.dsn(), **kwargs)
            async with pool.acquire() as conn:
                applied = await migrate(conn)
            if applied:
                log.info("fleet ledger: applied schema migrations %s", applied)
            self._pool = pool
        return self._pool

    def _timeout(self) -> float:
        return self.fleet.timeout_ms / 1000

    async def _guarded(self, what: str, op: Any) -> Any:
        """``await op(pool)`` within ``timeout_ms``; a failure is UNAVAILABLE naming the reason."""
        try:
            async with asyncio.timeout(self._timeout()):
                return await op(await self.pool())
        except (NotFound, InvalidArgument):
            raise
        except Exception as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            self.last_error = reason
            raise Unavailable(f"the fleet ledger (PostgreSQL) could not {what}: {reason}") from exc

    # ------------------------------------------------------------ recording (local first), shipping

    def enqueue(self, event: TurnFinished) -> None:
        super().enqueue(event)
        self.start()

    async def commit(self, event: TurnFinished) -> None:
        """``durability: sync``: on this daemon's disk, then (while PostgreSQL answers) in the fleet's ledger
        before the reply, so another replica's GetStats or ReportOutcome sees it at once. Concurrent
        turns share a shipment; during an outage the reply does not wait: the spool keeps the outcome."""
        await super().commit(event)
        self.start()
        if self.last_error is None:
            try:
                await self.shipped()
            except Unavailable:
                pass  # logged by the shipper; the outcome waits in the spool

    def start(self) -> None:
        """Start the shipper on the running loop (idempotent; called on first use)."""
        if self._shipper is None or self._shipper.done():
            self._shipper = asyncio.get_running_loop().create_task(self._ship_forever(), name="policyd-fleet-shipper")

    async def _ship_forever(self) -> None:
        interval = self.fleet.ship_interval_ms / 1000
        while True:
            try:
                await self.ship()
            except Unavailable as exc:
                log.warning("fleet ledger: shipment failed, kept in the local spool: %s", exc)
            with_timeout = asyncio.wait_for(self._wake.wait(), interval)
            try:
                await with_timeout
            except TimeoutError:
                pass
            self._wake.clear()

    async def shipped(self) -> None:
        """Return once a shipment that started after this call has finished (group shipping).

        Callers arriving while a shipment runs share the next one, so N concurrent replies
        cost one or two shipments, not N."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().create_task(self._ship_next())
        await asyncio.shield(self._next)

    async def _ship_next(self) -> None:
        async with self._ship_lock:
            waiting, self._next = self._next, None
            assert waiting is not None
            try:
                await self._ship_locked()
            except BaseException as exc:
                waiting.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                waiting.set_result(None)

    async def ship(self) -> int:
        """Copy every committed local outcome PostgreSQL lacks, oldest first; returns how many were sent."""
        async with self._ship_lock:
            return await self._ship_locked()

    async def _ship_locked(self) -> int:
        sent = 0
        await self.flush()
        if self.shipped_seq is None:
            self.shipped_seq = await self._guarded("read where its copy ends", self._watermark)
        while True:
            outcomes, attempts = await asyncio.to_thread(read_spool, self.path, self.shipped_seq, self.fleet.ship_batch)
            if not outcomes:
                await self._ship_reports()
                return sent
            batch = functools.partial(self._insert, outcomes=outcomes, attempts=attempts)
            await self._guarded("store outcomes", batch)
            self.shipped_seq = int(outcomes[-1][0])
            self.last_error = None
            sent += len(outcomes)

    async def _ship_reports(self) -> None:
        """Reports made here while PostgreSQL was down, in order, after the outcomes they are about."""
        if not self._reports_spooled:
            return
        for rowid, report in await asyncio.to_thread(spooled_reports, self.path):
            try:
                await self._guarded("record a spooled report", lambda pool, r=report: apply_report(pool, r))
            except NotFound:
                log.warning("fleet ledger: spooled report on %r found no outcome; dropped", report.request_id)
            await asyncio.to_thread(unspool_report, self.path, rowid)
        self._reports_spooled = False

    async def _watermark(self, pool: Any) -> int:
        value = await pool.fetchval("SELECT COALESCE(MAX(seq), 0) FROM outcomes WHERE replica = $1", self.replica)
        return int(value)

    async def _insert(
        self, pool: Any, outcomes: Sequence[tuple[Any, ...]], attempts: Sequence[tuple[Any, ...]]
    ) -> None:
        n_out = OUTCOME_COLUMNS.count(",") + 2
        n_att = ATTEMPT_COLUMNS.count(",") + 2
        out_sql = f"INSERT INTO outcomes (replica, {OUTCOME_COLUMNS}) VALUES ({_params(n_out)}) ON CONFLICT DO NOTHING"
        att_sql = f"INSERT INTO attempts (replica, {ATTEMPT_COLUMNS}) VALUES ({_params(n_att)}) ON CONFLICT DO NOTHING"
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(out_sql, [(self.replica, *row) for row in outcomes])
            if attempts:
                await conn.executemany(att_sql, [(self.replica, *row) for row in attempts])

    # ------------------------------------------------------------ reading, fleet-wide

    async def report(self, report: Report) -> bool:
        """The caller's verdict, on whichever replica answered the request (UNAVAILABLE while PostgreSQL is down)."""
        if not report.request_id:
            raise InvalidArgument("request_id", "is required")
        if report.score is not None and not (math.isfinite(report.score) and 0.0 <= report.score <= 1.0):
            raise InvalidArgument("score", f"must be in [0, 1] (got {report.score})")
        self.start()
        try:
            await self.ship()
            return bool(await self._guarded("record the report", lambda pool: apply_report(pool, report)))
        except Unavailable:
            if not await asyncio.to_thread(spool_report, self.path, report):
                raise  # not answered here: only PostgreSQL can say whether it exists
            self._reports_spooled = True
            log.info("fleet ledger: report on %r kept in the local spool until PostgreSQL is back", report.request_id)
            return True

    async def stats(self, query: StatsQuery) -> list[StatsRow]:
        self.start()
        await self.ship()
        return list(await self._guarded("compute stats", lambda pool: pg_stats(pool, query)))

    async def spent(self, *, since: float, tenant: str | None = None, policy: str | None = None) -> float:
        """The fleet's spend in a scope (seeds shared budgets); this daemon's own while PostgreSQL is down."""
        try:
            self.start()
            await self.ship()
            return float(await self._guarded("read spend", lambda pool: spent_usd(pool, since, tenant, policy)))
        except Unavailable as exc:
            log.warning("fleet ledger: %s; budgets seed from this daemon's ledger", exc)
            return await super().spent(since=since, tenant=tenant, policy=policy)

    async def health(self) -> str:
        try:
            await self._guarded("answer", lambda pool: pool.fetchval("SELECT 1"))
        except Unavailable as exc:
            return f"unavailable: {exc}"
        pending = await asyncio.to_thread(spooled_after, self.path, self.shipped_seq or 0)
        return "ok" if not pending else f"ok, {pending} outcome(s) in the local spool"

    async def aclose(self) -> None:
        if self._shipper is not None:
            self._shipper.cancel()
            try:
                await self._shipper
            except (asyncio.CancelledError, Exception):
                pass
        try:
            await self.ship()  # the last batch, if PostgreSQL answers; else it waits in the spool
        except Unavailable as exc:
            log.warning("fleet ledger: the spool keeps what PostgreSQL has not got yet: %s", exc)
        if self._pool is not None:
            await self._pool.close()
        await super().aclose()


def _params(n: int) -> str:
    return ", ".join(f"${i}" for i in range(1, n + 1))
