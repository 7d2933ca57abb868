"""The background writer: takes records off the response path and commits them in batches.

Requests only append to an in-memory queue (a lock and a list append). One thread owns
the SQLite writer connection and commits whatever is queued as one transaction when
``max_batch`` records wait, when the oldest has waited ``flush_interval_s``, or at once
when someone waits on the result (a ReportOutcome, a flush, ``durability: sync``).

Items commit in the order they were queued, so a report queued after its outcome (the
reply is built after the outcome is queued) always finds it: no false NOT_FOUND. The
thread also makes the rows (:mod:`policyd.ledger.records`): a queued outcome is a
:class:`~policyd.ledger.records.Finished`, and each run of them in a batch is stored with
one multi-row INSERT per table (:func:`~policyd.ledger.store.insert_outcomes`). Outcomes
queued behind :data:`~policyd.ledger.spool.PACK_AFTER` others (a commit waiting on the disk)
are packed into a :class:`~policyd.ledger.spool.Spool` instead, outside Python's object heap,
so a backlog's memory goes back to the OS once it commits (:mod:`policyd.ledger.spool`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from policyd.errors import Unavailable
from policyd.ledger.records import Finished, Values, values
from policyd.ledger.spool import PACK_AFTER, Spool, pack
from policyd.ledger.store import Report, apply_report, connect, insert_outcomes

log = logging.getLogger(__name__)


class _Awaited:
    """An item someone waits on: its payload (None is a flush marker) and the future its commit settles."""

    __slots__ = ("future", "payload")

    def __init__(self, payload: Finished | Report | None, future: asyncio.Future[Any]) -> None:
        self.payload = payload
        self.future = future


_Item = Finished | Spool | _Awaited
"""A queued outcome is queued as itself (no wrapper); a Spool holds a run of outcomes packed during a backlog."""


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
        self._since = 0.0
        """When the oldest queued item was queued (monotonic): the flush interval's clock."""
        self._count = 0
        """Outcomes and other items queued (a Spool counts its records)."""
        self._urgent = False
        self._closing = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="policyd-ledger-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ producers

    def enqueue(self, record: Finished) -> bool:
        """Queue an outcome for the next batch; False (and a log line) when the queue is full.

        Behind :data:`~policyd.ledger.spool.PACK_AFTER` queued records it is packed first."""
        packed = pack(record) if self._count >= PACK_AFTER else None  # read unlocked: only a hint
        with self._cv:
            if self._closing or self._count >= self.max_pending:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.error("ledger queue full or closed: %d records dropped so far", self.dropped)
                return False
            if not self._items:
                self._since = time.monotonic()
            self._count += 1
            if packed is None:
                self._items.append(record)
            else:
                self._spool().append(packed)
            if self._count == 1 or self._count >= self.max_batch:
                self._cv.notify()  # start the interval's clock, or commit a full batch now
            return True

    def _spool(self) -> Spool:
        """The spool at the end of the queue (a new one after anything else); under the lock."""
        last = self._items[-1] if self._items else None
        if isinstance(last, Spool):
            return last
        spool = Spool()
        self._items.append(spool)
        return spool

    async def commit(self, payload: Finished | Report | None) -> Any:
        """Queue ``payload`` and wait until the batch holding it has committed; returns its result."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        with self._cv:
            if self._closing:
                raise Unavailable("the ledger is closed (the daemon is shutting down)", reason="LEDGER_UNAVAILABLE")
            if not self._items:
                self._since = time.monotonic()
            self._items.append(_Awaited(payload, future))
            self._count += 1
            self._urgent = True
            self._cv.notify()
        return await future

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        await self.commit(None)

    def pending(self) -> int:
        """Records queued and not yet taken by the thread."""
        with self._cv:
            return self._count

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
                    if self._urgent or self._closing or self._count >= self.max_batch:
                        break
                    wait = self._since + self.flush_interval_s - time.monotonic()
                    if wait <= 0:
                        break
                    self._cv.wait(wait)
                elif self._closing:
                    return None
                else:
                    self._cv.wait()
            batch, self._items = self._items, []
            self._count = 0
            self._urgent = False
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            self._commit(batch)

    def _commit(self, batch: list[_Item]) -> None:
        results: list[tuple[Any, BaseException | None]] = []
        run: list[Finished | Spool] = []  # outcomes queued back to back: one INSERT per table
        records = 0
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            now = time.time()
            for item in batch:
                payload = item.payload if isinstance(item, _Awaited) else item
                if isinstance(payload, Finished | Spool):
                    run.append(payload)
                    results.append((None, None))
                    continue
                records += self._insert(run)
                if isinstance(payload, Report):
                    try:
                        results.append((apply_report(self._conn, payload, now), None))
                    except Exception as exc:  # NotFound, answered to its caller only
                        results.append((None, exc))
                else:
                    results.append((None, None))
            records += self._insert(run)
            self._conn.execute("COMMIT")
        except Exception as exc:  # sqlite3.Error; anything else would be a bug in the rows, logged
            records = sum(_records(item) for item in batch)
            log.exception("ledger batch of %d records failed to commit; they are lost", records)
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            failure = Unavailable(f"the ledger could not commit: {exc}")
            results = [(None, failure)] * len(batch)
        else:
            self.committed_batches += 1
            self.committed_records += records
        finally:
            for item in batch:
                if isinstance(item, Spool):
                    item.close()  # unmapped now, whatever happened
        for item, (value, error) in zip(batch, results, strict=True):
            if isinstance(item, _Awaited):
                _resolve(item.future, value, error)

    def _insert(self, run: list[Finished | Spool]) -> int:
        """Insert the outcomes of ``run`` in the open transaction and empty it; returns how many."""
        count = insert_outcomes(self._conn, _values(run)) if run else 0
        run.clear()
        return count


def _values(run: list[Finished | Spool]) -> Iterator[Values]:
    """The rows of each outcome in ``run``, made (or unpacked) one at a time."""
    for payload in run:
        if isinstance(payload, Spool):
            yield from payload
        else:
            yield values(payload)


def _records(item: _Item) -> int:
    payload = item.payload if isinstance(item, _Awaited) else item
    return payload.count if isinstance(payload, Spool) else int(isinstance(payload, Finished))


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
