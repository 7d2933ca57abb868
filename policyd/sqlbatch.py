"""Multi-row SQL statements in a bounded set of shapes, so SQLite's statement cache stays small.

Python's ``sqlite3`` keeps each connection's last 128 distinct SQL texts prepared. A
multi-row ``INSERT``'s compiled program grows with its rows (about 2.5 KB a row for the
ledger's 27 columns), so writing each batch with a statement of exactly its length kept
up to 128 of them per table and connection: the daemon's memory grew by tens of MB, more
the more batch sizes varied with load. Here a chunk of rows is padded up to a power of
two with rows of NULLs that the statement filters out (``WHERE column1 IS NOT NULL``:
the first column of a real row is never NULL), so a table has at most
``log2(max_rows) + 1`` statements, each prepared once, and a batch still takes one
statement (one ``sqlite3_step``, one GIL hand-off) per chunk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def shape(n: int) -> int:
    """The rows a statement for ``n`` rows has: the next power of two (1 for 0 or 1)."""
    return 1 << max(0, n - 1).bit_length()


def chunks(rows: Sequence[Sequence[object]], max_rows: int) -> Iterator[tuple[int, list[object]]]:
    """``(rows in the statement, its parameters)`` for each chunk of at most ``max_rows``
    (a power of two) rows, the last one padded with NULL rows up to :func:`shape`."""
    if max_rows < 1 or max_rows & (max_rows - 1):
        raise ValueError(f"max_rows must be a power of two, got {max_rows}")
    for i in range(0, len(rows), max_rows):
        chunk = rows[i : i + max_rows]
        params = [value for row in chunk for value in row]
        size = shape(len(chunk))
        params += [None] * ((size - len(chunk)) * len(chunk[0]))
        yield size, params


def values_select(marks: str, size: int) -> str:
    """``SELECT * FROM (VALUES <marks>, ...) WHERE column1 IS NOT NULL``: ``size`` rows of
    ``marks`` (one row's parenthesized placeholders), the padding rows filtered out. Follow
    ``INSERT INTO t (columns)`` with it; an ``ON CONFLICT`` clause may follow it (the
    ``WHERE`` is what lets SQLite parse an upsert after a ``SELECT``)."""
    return f"SELECT * FROM (VALUES {', '.join([marks] * size)}) WHERE column1 IS NOT NULL"
