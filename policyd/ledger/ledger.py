"""The ledger as the daemon uses it: a record step (observer of finished turns), reports, stats and spend.

Durability window (``ledger.durability``):

* ``batch`` (default): the observer only queues the outcome; it is durable once the
  batch holding it commits, at most ``flush_interval_ms`` after the request finished
  (plus the commit's own time), sooner when ``max_batch`` records wait. A ``kill -9``
  loses only outcomes still queued; anything acknowledged as durable (a reply to
  ReportOutcome or GetStats, both of which flush first, or a finished flush) stays.
* ``sync``: the observer commits the outcome before the reply leaves, so every reply
  is an acknowledgement. Concurrent requests share a commit (group commit).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from policyd.engine.turn import Observe, TurnFinished
from policyd.errors import InvalidArgument, NotFound
from policyd.ledger import stats as stats_mod
from policyd.ledger.records import Finished
from policyd.ledger.settings import LedgerSettings
from policyd.ledger.store import Report, connect, ledger_path, spent_usd
from policyd.ledger.writer import LedgerWriter


class Ledger:
    def __init__(self, data_dir: Path, settings: LedgerSettings | None = None) -> None:
        self.settings = settings or LedgerSettings()
        self.path = ledger_path(data_dir)
        self.writer = LedgerWriter(
            self.path,
            flush_interval_s=self.settings.flush_interval_ms / 1000,
            max_batch=self.settings.max_batch,
            max_pending=self.settings.max_pending,
        )
        self.peers: Callable[[], Awaitable[None]] | None = None
        """Commits the other workers' queued rows (``policyd serve --workers N``): reads then see the group's."""

    @property
    def sync(self) -> bool:
        return self.settings.durability == "sync"

    # ------------------------------------------------------------ recording

    def observer(self) -> Mapping[type, Observe]:
        """The ``ledger`` record step: queue each finished turn (``batch``) or commit it first (``sync``)."""
        return {TurnFinished: self.commit if self.sync else self.enqueue}

    def enqueue(self, event: TurnFinished) -> None:
        """``durability: batch``: queue the outcome, never wait (the writer thread makes its rows)."""
        self.writer.enqueue(Finished(event.turn.received, event.outcome, time.time()))

    async def commit(self, event: TurnFinished) -> None:
        """``durability: sync``: commit the outcome before it is answered (concurrent turns share a commit)."""
        await self.writer.commit(Finished(event.turn.received, event.outcome, time.time()))

    async def flush(self) -> None:
        await self.writer.flush()

    async def flush_all(self) -> None:
        """This process's queued rows, and every other worker's, committed (what a read must see)."""
        await self.flush()
        if self.peers is not None:
            await self.peers()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.writer.close)

    # ------------------------------------------------------------ reading

    async def report(self, report: Report) -> bool:
        """Record a caller's verdict durably; True when it changed anything.

        Raises InvalidArgument for a missing id or a score outside [0, 1], NotFound for
        an id the ledger never saw (an outcome still queued is found: it commits first).
        """
        if not report.request_id:
            raise InvalidArgument("request_id", "is required")
        if report.score is not None and not (math.isfinite(report.score) and 0.0 <= report.score <= 1.0):
            raise InvalidArgument("score", f"must be in [0, 1] (got {report.score})")
        try:
            return bool(await self.writer.commit(report))
        except NotFound:
            if self.peers is None:
                raise
            await self.peers()  # the outcome may still wait in another worker's queue
            return bool(await self.writer.commit(report))

    async def stats(self, query: stats_mod.StatsQuery) -> list[stats_mod.StatsRow]:
        """Stats over everything answered so far (queued outcomes are committed first)."""
        await self.flush_all()
        return await asyncio.to_thread(read_stats, self.path, query)

    async def spent(self, *, since: float, tenant: str | None = None, policy: str | None = None) -> float:
        """USD recorded since ``since`` for a tenant and/or policy (queued outcomes included)."""
        await self.flush_all()

        def read() -> float:
            conn = connect(self.path, create=False)
            try:
                return spent_usd(conn, since=since, tenant=tenant, policy=policy)
            finally:
                conn.close()

        return await asyncio.to_thread(read)


def read_stats(path: Path, query: stats_mod.StatsQuery) -> list[stats_mod.StatsRow]:
    """Stats straight from a ledger file (what ``policyd stats --data-dir`` uses)."""
    conn = connect(path, create=False)
    try:
        return stats_mod.compute(conn, query)
    finally:
        conn.close()
