"""A group's workers are forked at one instant and open a new ledger together: every one of them must
get it. Before the fix, SQLite refused the second switch to WAL ("database is locked", without waiting)
in about one start in six, and that worker served without a ledger (ReportOutcome UNIMPLEMENTED)."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from policyd.ledger.store import connect

OPENERS = 3
ROUNDS = 30


def _open(path: str, barrier: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue[str]) -> None:
    barrier.wait()
    try:
        connect(Path(path), create=True).close()
    except Exception as exc:  # reported to the test, which names it
        errors.put(f"{type(exc).__name__}: {exc}")


def test_workers_opening_a_new_ledger_at_one_instant_all_get_it(tmp_path: Path) -> None:
    fork = multiprocessing.get_context("fork")
    failures: list[str] = []
    for round_ in range(ROUNDS):
        path = tmp_path / f"ledger-{round_}.sqlite3"
        barrier, errors = fork.Barrier(OPENERS), fork.Queue()
        procs = [fork.Process(target=_open, args=(str(path), barrier, errors)) for _ in range(OPENERS)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=30)
            assert proc.exitcode == 0
        while not errors.empty():
            failures.append(errors.get())
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() is not None
    assert failures == []
