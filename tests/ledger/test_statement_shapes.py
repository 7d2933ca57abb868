"""The ledger's multi-row INSERTs come in a bounded set of sizes, whatever the batch lengths.

SQLite keeps each distinct SQL text prepared (Python's ``sqlite3``: the last 128 per
connection), and a multi-row INSERT's program grows with its rows: one statement per
batch length held tens of MB, more the more batch sizes varied with load (the soak's
RSS growth). Every batch length from 1 to past a statement's rows is written here.
"""

from __future__ import annotations

import sqlite3
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from policyd import sqlbatch
from policyd.ledger.records import finished, values
from policyd.ledger.store import ROWS_PER_STATEMENT, connect, insert_outcomes
from policyd.types import Attempt, AttemptRole, Effort, Explanation, Message, Outcome, OutcomeStatus, Request, Role


class Recording:
    """A connection that remembers the SQL texts it ran (what SQLite's statement cache is keyed by)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.texts: set[str] = set()

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self.texts.add(sql)
        return self.conn.execute(sql, params)


def done(i: int) -> Any:
    attempts = tuple(
        Attempt(index=k, role=AttemptRole.ANSWER, model="m", provider="simulated", effort=Effort.OFF, cost_usd=0.001)
        for k in range(1 + i % 2)  # one or two attempts: the attempts table gets other lengths
    )
    outcome = Outcome(
        request_id=f"r{i}",
        status=OutcomeStatus.ACCEPTED,
        output=Message(role=Role.ASSISTANT, content="x"),
        attempts=attempts,
        explanation=Explanation(policy="p", rule="r", strategy="single", reason=""),
        total_cost_usd=0.001 * len(attempts),
        tenant="t",
        latency_ms=1.0,
    )
    return finished(Request(request_id=f"r{i}", messages=(Message(role=Role.USER, content="q"),)), outcome, now=1.0)


def test_every_batch_length_uses_one_of_a_few_statements_and_stores_exactly_its_rows(tmp_path: Path):
    conn = connect(tmp_path / "ledger.db", create=True)
    recording = Recording(conn)
    lengths = [*range(1, ROWS_PER_STATEMENT + 2, 5), 3 * ROWS_PER_STATEMENT + 5]  # 53 lengths, 9 sizes
    n = 0
    for length in lengths:
        conn.execute("BEGIN IMMEDIATE")
        insert_outcomes(recording, [values(done(n + k)) for k in range(length)])  # type: ignore[arg-type]
        conn.execute("COMMIT")
        n += length
    inserts = {t for t in recording.texts if t.startswith("INSERT")}
    sizes = ROWS_PER_STATEMENT.bit_length()  # 1, 2, 4, ... ROWS_PER_STATEMENT rows
    assert len(inserts) <= 2 * sizes, f"{len(inserts)} INSERT texts for {len(lengths)} batch lengths"
    assert conn.execute("SELECT count(*), count(DISTINCT request_id), max(seq) FROM outcomes").fetchone() == (n, n, n)
    attempts = sum(1 + i % 2 for i in range(n))
    assert conn.execute("SELECT count(*) FROM attempts").fetchone() == (attempts,)
    conn.close()


def test_a_backlog_is_not_doubled_in_memory_by_its_rows(tmp_path: Path):
    """After a disk stall the writer commits thousands of queued outcomes at once; their rows are
    made a statement's worth at a time (all at once: ~0.75 KB a record more at the peak)."""
    conn = connect(tmp_path / "ledger.db", create=True)
    backlog = [done(i) for i in range(4000)]
    conn.execute("BEGIN IMMEDIATE")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        insert_outcomes(conn, map(values, backlog))
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    conn.execute("COMMIT")
    assert conn.execute("SELECT count(*) FROM outcomes").fetchone() == (4000,)
    assert peak < 1_000_000, f"{peak / 1e6:.1f} MB above the backlog while inserting it"
    conn.close()


def test_chunks_come_in_powers_of_two_and_refuse_other_maximums():
    rows = [(i, "x") for i in range(11)]
    sizes = [(size, len(params)) for size, params in sqlbatch.chunks(rows, 4)]
    assert sizes == [(4, 8), (4, 8), (2, 4), (1, 2)]
    assert [value for _, params in sqlbatch.chunks(rows, 4) for value in params] == [v for row in rows for v in row]
    assert list(sqlbatch.chunks([], 4)) == []
    with pytest.raises(ValueError, match="max_rows"):
        list(sqlbatch.chunks(rows, 6))
