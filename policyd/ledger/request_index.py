"""Finding an outcome by its request id (ReportOutcome) without an index written row by row.

Request ids are random (UUID4s, or whatever the caller sends), so an index on
``outcomes.request_id`` put each new row on a random page of its B-tree: a batch of a hundred
outcomes dirtied about a hundred index pages, each written whole (4 KB) to the WAL at the
commit and again at the checkpoint, for a row of about 350 bytes. That was the largest part of
the writer thread's CPU per request (in a 200,000-row ledger ~18 of ~27 µs per outcome; in a
fresh one ~6).

So new rows are not indexed one by one. The table ``request_ids`` (request id, seq) is filled in
runs: once :data:`INDEX_EVERY` outcomes wait past ``meta.indexed_seq``, one sorted
``INSERT … SELECT`` adds them all, in the transaction of the batch that crossed the line, and
moves ``indexed_seq`` on; sorted, the run dirties each index page it touches once, not once a row.
A lookup (:func:`latest_outcome`) reads the rows past ``indexed_seq`` newest first (a range of
the table's own key, at most :data:`INDEX_EVERY` plus one batch, stopping at the first match: a
report on a recent answer reads few), then the index. Both parts see committed rows only through
the same transaction or snapshot, so a report still finds an outcome committed just before it.

A ledger made before this (``outcomes_request_id`` index, no ``request_ids``) is migrated when
the writer first opens it (:func:`migrate`): its rows are indexed in one run and the old index
is dropped. A daemon of the older version opening the file again recreates its index and
writes rows past ``indexed_seq``, which the tail covers: both versions stay correct.
"""

from __future__ import annotations

import sqlite3

INDEX_EVERY = 4096
"""Outcomes past ``indexed_seq`` that trigger a run. A lookup that misses the tail reads this many
rows (about 60 ns each, ~0.25 ms); a run of 4,096 sorted ids dirties at most as many index pages,
and far fewer while the index has fewer pages than that (a ledger under ~400,000 outcomes)."""

_OLD_INDEX = "outcomes_request_id"


def indexed_seq(conn: sqlite3.Connection) -> int:
    """The highest ``seq`` whose request id is in ``request_ids`` (0: none yet, or no such table)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'indexed_seq'").fetchone()
    return int(row[0]) if row is not None else 0


def index_due(conn: sqlite3.Connection, last_seq: int) -> None:
    """Index the tail in one run when :data:`INDEX_EVERY` outcomes wait (inside the caller's write
    transaction, after it inserted up to ``last_seq``)."""
    if last_seq - indexed_seq(conn) >= INDEX_EVERY:
        index_tail(conn)


def index_tail(conn: sqlite3.Connection) -> None:
    """Add every outcome past ``indexed_seq`` to ``request_ids``, sorted (in the caller's transaction)."""
    after = indexed_seq(conn)
    last = conn.execute("SELECT MAX(seq) FROM outcomes").fetchone()[0]
    if last is None or last <= after:
        return
    conn.execute(
        "INSERT OR IGNORE INTO request_ids (request_id, seq)"
        " SELECT request_id, seq FROM outcomes WHERE seq > ? AND seq <= ? ORDER BY request_id, seq",
        (after, last),
    )
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('indexed_seq', ?)", (str(last),))


def migrate(conn: sqlite3.Connection) -> None:
    """A ledger with the row-by-row ``outcomes_request_id`` index: index its rows, drop that index."""
    if not _has_old_index(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _has_old_index(conn):  # another worker may have migrated it meanwhile
            index_tail(conn)
            conn.execute(f"DROP INDEX {_OLD_INDEX}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _has_old_index(conn: sqlite3.Connection) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (_OLD_INDEX,))
    return found.fetchone() is not None


def latest_outcome(
    conn: sqlite3.Connection, request_id: str, tenant: str | None, columns: str
) -> tuple[object, ...] | None:
    """``columns`` (of ``outcomes``, a comma-separated list) of the latest outcome with this request
    id (and tenant, unless None), or None. Rows past ``indexed_seq`` are newer than any indexed one,
    so the tail is read first and the index only when the tail has none."""
    scoped = "" if tenant is None else " AND tenant = ?"
    extra: tuple[str, ...] = () if tenant is None else (tenant,)
    after = indexed_seq(conn)
    row: tuple[object, ...] | None = conn.execute(
        f"SELECT {columns} FROM outcomes WHERE seq > ? AND request_id = ?{scoped} ORDER BY seq DESC LIMIT 1",
        (after, request_id, *extra),
    ).fetchone()
    if row is None and after:
        row = conn.execute(
            f"SELECT {columns} FROM outcomes WHERE seq IN"
            f" (SELECT seq FROM request_ids WHERE request_id = ? AND seq <= ?){scoped} ORDER BY seq DESC LIMIT 1",
            (request_id, after, *extra),
        ).fetchone()
    return row
