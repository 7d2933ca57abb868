"""ReportOutcome finds the latest outcome of a request id whether it sits in the indexed runs or in the
tail written since, in a new ledger, one migrated from the row-by-row index, and one an older daemon
wrote to again."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from policyd.errors import NotFound
from policyd.fleet.spool import spool_report
from policyd.ledger import request_index
from policyd.ledger.ledger import Ledger
from policyd.ledger.records import OUTCOME_COLUMNS, Finished, finished, values
from policyd.ledger.settings import LedgerSettings
from policyd.ledger.store import Report, apply_report, connect, insert_outcomes
from policyd.types import Attempt, AttemptRole, Effort, Explanation, Message, Outcome, OutcomeStatus, Request, Role

EVERY = 8


@pytest.fixture(autouse=True)
def small_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_index, "INDEX_EVERY", EVERY)


def done(rid: str, tenant: str = "t") -> Finished:
    attempt = Attempt(index=0, role=AttemptRole.ANSWER, model="m", provider="p", effort=Effort.OFF)
    outcome = Outcome(
        request_id=rid,
        status=OutcomeStatus.ACCEPTED_UNVALIDATED,
        output=Message(role=Role.ASSISTANT, content="x"),
        attempts=(attempt,),
        explanation=Explanation(policy="p", rule="r", strategy="single", reason=""),
        tenant=tenant,
    )
    return finished(Request(request_id=rid, messages=(Message(role=Role.USER, content="q"),)), outcome, now=1.0)


def write(conn: sqlite3.Connection, *rids: str, tenant: str = "t") -> None:
    conn.execute("BEGIN IMMEDIATE")
    insert_outcomes(conn, [values(done(rid, tenant)) for rid in rids])
    conn.execute("COMMIT")


def reported(conn: sqlite3.Connection) -> dict[int, int | None]:
    return dict(conn.execute("SELECT seq, reported_success FROM outcomes"))


def report(conn: sqlite3.Connection, rid: str, tenant: str | None = None, success: bool = False) -> bool:
    conn.execute("BEGIN IMMEDIATE")
    try:
        return apply_report(conn, Report(rid, success, tenant=tenant), now=2.0)
    finally:
        conn.execute("COMMIT")


def test_ids_are_indexed_in_sorted_runs_once_enough_outcomes_wait(tmp_path: Path):
    conn = connect(tmp_path / "ledger.sqlite3", create=True)
    write(conn, *(f"r{i}" for i in range(EVERY - 1)))
    assert conn.execute("SELECT COUNT(*) FROM request_ids").fetchone()[0] == 0  # not due yet
    write(conn, "r7", "r8")
    assert request_index.indexed_seq(conn) == EVERY + 1
    assert sorted(conn.execute("SELECT seq FROM request_ids")) == [(s,) for s in range(1, EVERY + 2)]
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'outcomes_request_id'").fetchone() is None


def test_a_report_finds_the_latest_outcome_across_the_index_and_the_tail(tmp_path: Path):
    conn = connect(tmp_path / "ledger.sqlite3", create=True)
    write(conn, "old", *(f"a{i}" for i in range(EVERY)))  # "old" (seq 1) is indexed
    write(conn, "again", "b")
    write(conn, *(f"c{i}" for i in range(EVERY - 4)))  # still in the tail
    tail_start = request_index.indexed_seq(conn)
    assert tail_start == EVERY + 1
    assert report(conn, "old")  # found through the index
    write(conn, "old")  # a reused id: the newer outcome (in the tail) gets the next report
    assert request_index.indexed_seq(conn) == tail_start
    assert report(conn, "old", success=True)
    rows = reported(conn)
    assert rows[1] == 0 and rows[max(rows)] == 1
    assert report(conn, "b") and not report(conn, "b")  # the tail, then the same report again
    with pytest.raises(NotFound):
        report(conn, "never-seen")


def test_another_tenants_request_id_is_not_found_in_either_part(tmp_path: Path):
    conn = connect(tmp_path / "ledger.sqlite3", create=True)
    write(conn, "shared", *(f"a{i}" for i in range(EVERY)), tenant="acme")
    write(conn, "fresh", tenant="acme")
    for rid in ("shared", "fresh"):
        with pytest.raises(NotFound):
            report(conn, rid, tenant="other")
        assert report(conn, rid, tenant="acme")


def old_layout(path: Path) -> None:
    """The file as the previous version made it: ``outcomes_request_id``, no ``request_ids``."""
    conn = connect(path, create=True)
    conn.executescript(
        "DROP TABLE request_ids; DELETE FROM meta WHERE key = 'indexed_seq';"
        " CREATE INDEX outcomes_request_id ON outcomes (request_id);"
    )
    conn.close()


def test_a_ledger_of_the_previous_version_is_migrated_when_the_writer_opens_it(tmp_path: Path):
    path = tmp_path / "ledger.sqlite3"
    old_layout(path)
    conn = sqlite3.connect(path, isolation_level=None)
    write(conn, "x", "y", "z")  # rows written by the old version (no run is due: EVERY > 3 rows)
    conn.close()
    conn = connect(path, create=True)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'outcomes_request_id'").fetchone() is None
    assert request_index.indexed_seq(conn) == 3
    assert [r for (r,) in conn.execute("SELECT request_id FROM request_ids")] == ["x", "y", "z"]
    assert report(conn, "y", tenant="t")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_rows_an_older_daemon_wrote_after_the_index_are_found_and_indexed_again(tmp_path: Path):
    path = tmp_path / "ledger.sqlite3"
    conn = connect(path, create=True)
    write(conn, *(f"a{i}" for i in range(EVERY)))
    conn.close()
    # the previous version opens it: it recreates its own index and writes a row past indexed_seq
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("CREATE INDEX IF NOT EXISTS outcomes_request_id ON outcomes (request_id)")
    row = (EVERY + 1, *values(done("from-old"))[0])
    marks = ", ".join(["?"] * len(row))
    old.execute(f"INSERT INTO outcomes ({', '.join(OUTCOME_COLUMNS)}) VALUES ({marks})", row)
    old.close()
    conn = connect(path, create=True)
    assert request_index.indexed_seq(conn) == EVERY + 1  # the migration indexed its row
    assert report(conn, "from-old") and report(conn, "a0")


def test_the_fleet_spool_keeps_a_report_on_an_outcome_in_either_part(tmp_path: Path):
    path = tmp_path / "ledger.sqlite3"
    conn = connect(path, create=True)
    write(conn, "indexed", *(f"a{i}" for i in range(EVERY)))
    write(conn, "tail")
    conn.close()
    assert spool_report(path, Report("indexed", True)) and spool_report(path, Report("tail", True, tenant="t"))
    assert not spool_report(path, Report("tail", True, tenant="other"))
    assert not spool_report(path, Report("unknown", True))


def test_reports_through_the_writer_find_outcomes_queued_past_several_runs(tmp_path: Path):
    async def main() -> None:
        ledger = Ledger(tmp_path, LedgerSettings(flush_interval_ms=5))
        try:
            for i in range(3 * EVERY + 1):
                ledger.writer.enqueue(done(f"r{i}"))
                if i % 5 == 0:
                    await ledger.flush()
            assert await ledger.report(Report("r0", True))
            assert await ledger.report(Report(f"r{3 * EVERY}", True))  # queued, maybe still in the tail
            with pytest.raises(NotFound):
                await ledger.report(Report("nope", True))
        finally:
            await ledger.aclose()

    asyncio.run(main())
