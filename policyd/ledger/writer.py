"""The background writer: takes records off the response path and commits them in batches.

Requests only append to an in-memory queue (a lock and a list append). One thread owns
the SQLite writer connection and commits whatever is queued as one transaction when
``max_batch`` records wait, when the oldest has waited ``flush_interval_s``, or at once
when someone waits on the result (a ReportOutcome, a flush, ``durability: sync``).

Items commit in the order they were queued, so a report queued after its outcome (the
reply is built after the outcome is queued) always finds it: no false NOT_FOUND. The
thread also makes the rows (:mod:`policyd.ledger.records`): a queued outcome is a
:class:`~policyd.ledger.records.Finished`, and each run of them in a batch is stored with
one multi-row INSERT per table (:func:`~policyd.ledger.store.insert_outcomes`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policyd.errors import Unavailable
from policyd.ledger.records import Finished
from policyd.ledger.store import Report, apply_report, connect, insert_outcomes

log = logging.getLogger(__name__)


@dataclass
class _Item:
    payload: Finished | Report | None
    """None is a flush marker."""
    future: asyncio.Future[Any] | None = None
    enqueued: float = field(default_factory=time.monotonic)


class LedgerWriter:
    def __init__(self, path: Path, *, flush_interval_s: float, max_batch: int, max_pending: int) -> None:
        self.path = path
        self.flush_interval_s = flush_interval_s
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.committed_batches = 0
        self.committed_records = 0
        self.dropped = 0
        self._conn = connect(path, create=True)
        self._items: list[_Item] = []
        self._urgent = False
        self._closing = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="policyd-ledger-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ producers

    def enqueue(self, record: Finished) -> bool:
        """Queue an outcome for the next batch; False (and a log line) when the queue is full."""
        with self._cv:
            if self._closing or len(self._items) >= self.max_pending:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.error("ledger queue full or closed: %d records dropped so far", self.dropped)
                return False
            self._items.append(_Item(record))
            if len(self._items) == 1 or len(self._items) >= self.max_batch:
                self._cv.notify()  # start the interval's clock, or commit a full batch now
            return True

    async def commit(self, payload: Finished | Report | None) -> Any:
        """Queue ``payload`` and wait until the batch holding it has committed; returns its result."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        with self._cv:
            if self._closing:
                raise Unavailable("the ledger is closed (the daemon is shutting down)", reason="LEDGER_UNAVAILABLE")
            self._items.append(_Item(payload, future))
            self._urgent = True
            self._cv.notify()
        return await future

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        await self.commit(None)

    def pending(self) -> int:
        with self._cv:
            return len(self._items)

    def close(self) -> None:
        """Commit what is queued, stop the thread and close the connection (blocking)."""
        with self._cv:
            self._closing = True
            self._cv.notify()
        self._thread.join()
        self._conn.close()

    # ------------------------------------------------------------ the thread

    def _take(self) -> list[_Item] | None:
        with self._cv:
            while True:
                if self._items:
                    if self._urgent or self._closing or len(self._items) >= self.max_batch:
                        break
                    wait = self._items[0].enqueued + self.flush_interval_s - time.monotonic()
                    if wait <= 0:
                        break
                    self._cv.wait(wait)
                elif self._closing:
                    return None
                else:
                    self._cv.wait()
            batch, self._items = self._items, []
            self._urgent = False
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            self._commit(batch)

    def _commit(self, batch: list[_Item]) -> None:
        results: list[tuple[Any, BaseException | None]] = []
        run: list[Finished] = []  # outcomes queued back to back: one INSERT per table
        records = 0
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            now = time.time()
            for item in batch:
                if isinstance(item.payload, Finished):
                    run.append(item.payload)
                    results.append((None, None))
                    continue
                records += self._insert(run)
                if isinstance(item.payload, Report):
                    try:
                        results.append((apply_report(self._conn, item.payload, now), None))
                    except Exception as exc:  # NotFound, answered to its caller only
                        results.append((None, exc))
                else:
                    results.append((None, None))
            records += self._insert(run)
            self._conn.execute("COMMIT")
        except Exception as exc:  # sqlite3.Error; anything else would be a bug in the rows, logged
            records = sum(isinstance(item.payload, Finished) for item in batch)
            log.exception("ledger batch of %d records failed to commit; they are lost", records)
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            failure = Unavailable(f"the ledger could not commit: {exc}")
            results = [(None, failure)] * len(batch)
        else:
            self.committed_batches += 1
            self.committed_records += records
        for item, (value, error) in zip(batch, results, strict=True):
            if item.future is not None:
                _resolve(item.future, value, error)

    def _insert(self, run: list[Finished]) -> int:
        """Insert the outcomes of ``run`` in the open transaction and empty it; returns how many."""
        count = len(run)
        if count:
            insert_outcomes(self._conn, run)
            run.clear()
        return count


def _resolve(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    try:
        future.get_loop().call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody waits any more
        pass
