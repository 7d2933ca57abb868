"""The ledger file: SQLite in WAL mode, its schema, and the statements that write it.

One writer connection (owned by the writer thread) and short-lived reader connections;
WAL lets readers (stats, the ``policyd stats`` CLI) run while the writer commits.
``synchronous=FULL`` makes every committed batch survive a power cut, not only a
killed process; batching is what keeps that cheap.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from policyd.errors import NotFound
from policyd.ledger.records import ATTEMPT_COLUMNS, OUTCOME_COLUMNS, Values
from policyd.ledger.request_index import index_due, latest_outcome, migrate

LEDGER_FILE = "ledger.sqlite3"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    ts REAL NOT NULL,
    tenant TEXT NOT NULL,
    policy TEXT NOT NULL,
    rule TEXT NOT NULL,
    task TEXT NOT NULL,
    strategy TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    models TEXT NOT NULL,
    final_model TEXT NOT NULL,
    status TEXT NOT NULL,
    default_success INTEGER NOT NULL,
    reported_success INTEGER,
    reported_score REAL,
    reported_note TEXT,
    reported_at REAL,
    cost_usd REAL NOT NULL,
    saved_usd REAL NOT NULL,
    tokens_saved INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    cached INTEGER NOT NULL,
    escalated INTEGER NOT NULL,
    validations INTEGER NOT NULL,
    validations_passed INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    failed_attempts INTEGER NOT NULL,
    decision_id TEXT NOT NULL,
    trace_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_ts ON outcomes (ts);
CREATE TABLE IF NOT EXISTS attempts (
    outcome_seq INTEGER NOT NULL REFERENCES outcomes (seq),
    idx INTEGER NOT NULL,
    role TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    effort TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    saved_usd REAL NOT NULL,
    latency_ms REAL NOT NULL,
    cached INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    validator TEXT NOT NULL,
    verdict_reason TEXT NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (outcome_seq, idx)
);
CREATE TABLE IF NOT EXISTS request_ids (
    request_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (request_id, seq)
) WITHOUT ROWID;
"""

ROWS_PER_STATEMENT = 64
"""Rows per multi-row INSERT (a power of two: :mod:`policyd.sqlbatch`). The statements of every
size of both tables stay prepared in about 0.7 MB (with 256, 2.7 MB: the 128- and 256-row ones,
2 MB, were first prepared when a disk stall left a backlog, and then kept); a 5,000-record
backlog costs the same CPU per record (7.8 µs) with 64 as with 256."""


@dataclass(frozen=True)
class Report:
    """A caller's verdict on an earlier answer (ReportOutcome)."""

    request_id: str
    success: bool
    score: float | None = None
    note: str = ""
    tenant: str | None = None
    """Only an outcome of this tenant may be reported on (None: any). Another tenant's
    request id is NOT_FOUND, exactly like an unknown one, so nothing tells them it exists."""


def ledger_path(data_dir: Path) -> Path:
    return data_dir / LEDGER_FILE


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """Open the ledger; ``create=False`` fails with NotFound when there is no ledger yet."""
    if not create and not path.exists():
        raise NotFound(f"no ledger at {path} (the daemon creates it on its first start)")
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    if create:
        _wal(conn)
        # One transaction, so one sync for the whole schema: a new ledger's first start (every worker
        # of a group runs this) waited for a sync per statement. IMMEDIATE: a group's workers open a
        # new ledger at the same instant, and a deferred transaction that finds the other's write lock
        # when it upgrades fails at once ("database is locked"); IMMEDIATE waits for it (busy_timeout).
        conn.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nCOMMIT;")
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    conn.execute("PRAGMA synchronous = FULL")
    if create:
        migrate(conn)  # a ledger of an older version: its request ids indexed in one run
    return conn


def _wal(conn: sqlite3.Connection, wait_s: float = 10.0) -> None:
    """Put the ledger in WAL mode. On a new file, a group's workers switch it at the same instant, and
    SQLite answers the switch that finds the other's lock "database is locked" at once, without its busy
    handler: retried here for up to ``wait_s`` (the busy timeout), then the error stands."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def insert_outcomes(conn: sqlite3.Connection, items: Iterable[Values]) -> int:
    """Insert outcomes given by their rows (:func:`~policyd.ledger.records.values`) and their
    attempts, with multi-row INSERTs in :mod:`policyd.sqlbatch`'s power-of-two sizes (at most
    :data:`ROWS_PER_STATEMENT` rows), inside the caller's write transaction; returns how many.

    Each statement is one ``sqlite3_step``, so one GIL hand-off for up to a statement's rows
    (``executemany`` steps, and hands the GIL over, once a row). The ``seq`` numbers are
    given here, following the table's AUTOINCREMENT counter: the transaction holds the
    write lock, so no other writer (another worker's) can take them meanwhile. ``items`` is
    read :data:`ROWS_PER_STATEMENT` outcomes at a time: a backlog the writer catches up on
    after a slow disk is not doubled in memory by its rows. The parameters go straight into
    one flat list per table (no row tuple copied with its ``seq``), and the statements' texts
    are made once (:data:`_OUTCOME_SQL`).
    """
    last = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outcomes'").fetchone()
    first = seq = int(last[0]) if last is not None else 0
    source = iter(items)
    while chunk := list(itertools.islice(source, ROWS_PER_STATEMENT)):
        outcomes: list[object] = []
        attempts: list[object] = []
        tried = 0
        for outcome, tries in chunk:
            seq += 1
            outcomes.append(seq)
            outcomes += outcome
            for attempt in tries:
                attempts.append(seq)
                attempts += attempt
            tried += len(tries)
        _insert_flat(conn, _OUTCOME_SQL, len(OUTCOME_COLUMNS), outcomes, len(chunk))
        _insert_flat(conn, _ATTEMPT_SQL, len(ATTEMPT_COLUMNS), attempts, tried)
    if seq > first:
        index_due(conn, seq)
    return seq - first


def _statements(table: str, columns: tuple[str, ...]) -> dict[int, str]:
    """The multi-row INSERT of ``table`` for each power-of-two row count up to :data:`ROWS_PER_STATEMENT`."""
    marks = "(" + ", ".join("?" * len(columns)) + ")"
    sizes = [1 << k for k in range(ROWS_PER_STATEMENT.bit_length())]
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    return {size: head + ", ".join([marks] * size) for size in sizes}


_OUTCOME_SQL = _statements("outcomes", OUTCOME_COLUMNS)
_ATTEMPT_SQL = _statements("attempts", ATTEMPT_COLUMNS)


def _insert_flat(conn: sqlite3.Connection, texts: dict[int, str], width: int, params: list[object], rows: int) -> None:
    """Insert ``rows`` rows given flat (``width`` values each), cut as :func:`policyd.sqlbatch.chunks` cuts them."""
    start, size = 0, ROWS_PER_STATEMENT
    while start < rows:
        while size > rows - start:
            size >>= 1
        whole = start == 0 and size == rows
        conn.execute(texts[size], params if whole else params[start * width : (start + size) * width])
        start += size


def apply_report(conn: sqlite3.Connection, report: Report, now: float) -> bool:
    """Record the caller's verdict on the latest outcome with this request id.

    Returns whether anything changed (False for a repeat of the same report); raises
    NotFound for a request id the ledger never saw.
    """
    columns = "seq, reported_success, reported_score, reported_note"
    row = latest_outcome(conn, report.request_id, report.tenant, columns)
    if row is None:
        raise NotFound(
            f"request {report.request_id!r} is not in the ledger",
            reason="REQUEST_NOT_FOUND",
            metadata={"request_id": report.request_id},
        )
    seq, success, score, note = row
    if (success, score, note) == (int(report.success), report.score, report.note):
        return False
    conn.execute(
        "UPDATE outcomes SET reported_success = ?, reported_score = ?, reported_note = ?, reported_at = ?"
        " WHERE seq = ?",
        (int(report.success), report.score, report.note, now, seq),
    )
    return True


def spent_usd(conn: sqlite3.Connection, *, since: float, tenant: str | None = None, policy: str | None = None) -> float:
    """USD recorded since ``since`` (unix seconds), for a tenant and/or a policy."""
    where = ["ts >= ?"]
    args: list[object] = [since]
    for column, value in (("tenant", tenant), ("policy", policy)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    row = conn.execute(f"SELECT COALESCE(SUM(cost_usd), 0) FROM outcomes WHERE {' AND '.join(where)}", args).fetchone()
    return float(row[0])


def request_ids(conn: sqlite3.Connection) -> Iterable[str]:
    return (r[0] for r in conn.execute("SELECT request_id FROM outcomes"))
