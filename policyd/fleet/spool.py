"""The fleet ledger's local spool: the daemon's own SQLite ledger, read in ``seq`` order, and the
reports kept there while PostgreSQL is down (table ``fleet_reports``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from policyd.ledger.request_index import latest_outcome
from policyd.ledger.store import Report, connect

Row = tuple[Any, ...]

OUTCOME_COLUMNS = (
    "seq, request_id, ts, tenant, policy, rule, task, strategy, policy_version, models, final_model, status,"
    " default_success, reported_success, reported_score, reported_note, reported_at, cost_usd, saved_usd,"
    " tokens_saved, input_tokens, output_tokens, latency_ms, cached, escalated, validations, validations_passed,"
    " attempts, failed_attempts, decision_id, trace_id"
)
ATTEMPT_COLUMNS = (
    "outcome_seq, idx, role, model, provider, effort, input_tokens, output_tokens, cost_usd, saved_usd,"
    " latency_ms, cached, verdict, validator, verdict_reason, error"
)


def read_spool(path: Path, after: int, limit: int) -> tuple[list[Row], list[Row]]:
    """Local outcomes with ``seq > after`` (at most ``limit``) and their attempts, in seq order."""
    conn = connect(path, create=False)
    try:
        outcomes = conn.execute(
            f"SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        ).fetchall()
        if not outcomes:
            return [], []
        attempts = conn.execute(
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE outcome_seq > ? AND outcome_seq <= ?",
            (after, outcomes[-1][0]),
        ).fetchall()
        return outcomes, attempts
    finally:
        conn.close()


def spooled_after(path: Path, seq: int) -> int:
    conn = connect(path, create=False)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM outcomes WHERE seq > ?", (seq,)).fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


_REPORTS = """CREATE TABLE IF NOT EXISTS fleet_reports (id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL, tenant TEXT, success INTEGER NOT NULL, score REAL, note TEXT NOT NULL)"""


def spool_report(path: Path, report: Report) -> bool:
    """Keep a report on an outcome this daemon answered (durably, in its ledger file); False if it did not."""
    conn = connect(path, create=False)
    try:
        if latest_outcome(conn, report.request_id, report.tenant, "seq") is None:
            return False
        conn.execute(_REPORTS)
        conn.execute(
            "INSERT INTO fleet_reports (request_id, tenant, success, score, note) VALUES (?, ?, ?, ?, ?)",
            (report.request_id, report.tenant, int(report.success), report.score, report.note),
        )
        return True
    finally:
        conn.close()


def spooled_reports(path: Path) -> list[tuple[int, Report]]:
    conn = connect(path, create=False)
    try:
        conn.execute(_REPORTS)
        rows = conn.execute("SELECT id, request_id, tenant, success, score, note FROM fleet_reports ORDER BY id")
        return [(r[0], Report(r[1], bool(r[3]), r[4], r[5], r[2])) for r in rows]
    finally:
        conn.close()


def unspool_report(path: Path, rowid: int) -> None:
    conn = connect(path, create=False)
    try:
        conn.execute("DELETE FROM fleet_reports WHERE id = ?", (rowid,))
    finally:
        conn.close()
