"""Multi-row SQL statements in a bounded set of sizes, so SQLite's statement cache stays small.

Python's ``sqlite3`` keeps each connection's last 128 distinct SQL texts prepared. A
multi-row ``INSERT``'s compiled program grows with its rows (about 2.5 KB a row for the
ledger's 27 columns), so writing each batch with a statement of exactly its length kept
up to 128 of them per table and connection: the daemon's memory grew by tens of MB, more
the more batch sizes varied with load. Here a batch is cut into chunks whose sizes are
powers of two (its length's binary digits: 75 rows are 64 + 8 + 2 + 1), so a table has at
most ``log2(max_rows) + 1`` statements, each prepared once. A batch of ``n`` rows takes
at most ``log2(max_rows)`` more statements (each one ``sqlite3_step``, one GIL hand-off)
than one per ``max_rows``; padding a single statement with rows of NULLs to filter out
instead cost 10 to 20 µs more per row in SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def chunks(rows: Sequence[Sequence[object]], max_rows: int) -> Iterator[tuple[int, list[object]]]:
    """``(rows in the chunk, its parameters flattened)`` for chunks of ``rows`` whose sizes are
    powers of two: ``max_rows`` (itself a power of two) each, then the rest by binary digit."""
    if max_rows < 1 or max_rows & (max_rows - 1):
        raise ValueError(f"max_rows must be a power of two, got {max_rows}")
    start, size = 0, max_rows
    while start < len(rows):
        while size > len(rows) - start:
            size >>= 1
        yield size, [value for row in rows[start : start + size] for value in row]
        start += size
