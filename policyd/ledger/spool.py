"""Outcomes queued during a backlog, packed outside Python's object heap.

A queued outcome normally waits as a :class:`~policyd.ledger.records.Finished`: three
references to the request and its answer, whose few dozen small objects (strings, tuples,
frozen dataclasses) stay alive until the batch commits. That is cheap for the
``flush_interval_ms`` a batch normally waits. When a commit waits on the disk instead (an
``fsync`` under ``synchronous=FULL`` can stall for seconds on a busy disk), thousands of
them pile up, and Python's small-object allocator takes new 1 MiB arenas for them. After
the backlog commits, an arena goes back to the OS only when every object in it is free, and
the requests served meanwhile leave a few long-lived objects in most of them: the process
kept most of the 1.4 KB each queued outcome took (the soak's RSS growth on a stalling disk).

So an outcome queued behind :data:`PACK_AFTER` others is stored as its rows instead
(:func:`~policyd.ledger.records.values`, serialized with :mod:`marshal`), back to back in
anonymous memory maps of :data:`SEGMENT` bytes: about 0.3 KB a record, no Python object
per record, and each map is unmapped (its memory returned to the OS) once the batch holding
its records has committed (or failed). The event loop pays for making the rows (about 5 µs)
only for the outcomes that would otherwise wait behind a stalled disk; the writer thread
then only unpacks them. ``tests/ledger/test_backlog_memory.py`` measures both.
"""

from __future__ import annotations

import marshal
import mmap
from collections.abc import Iterator
from typing import Any

from policyd.ledger.records import Finished, Values, values

PACK_AFTER = 256
"""Outcomes queued beyond this many are packed. Under the default ``flush_interval_ms`` a queue
this long means a commit has waited on the disk (1,500 req/s queue ~75 per interval)."""
SEGMENT = 1 << 20
"""Bytes per memory map: about 3,000 packed records (its pages are resident only once written)."""
_LEN = 4


def pack(record: Finished) -> bytes:
    """The rows of ``record``, ready to be appended to a :class:`Spool`."""
    rows: Any = values(record)  # str, int, float and None values: what marshal stores
    return marshal.dumps(rows)


class Spool:
    """A run of packed outcomes, in the order they were appended."""

    def __init__(self) -> None:
        self.count = 0
        self._segments: list[mmap.mmap] = []
        self._ends: list[int] = []

    def append(self, packed: bytes) -> None:
        need = _LEN + len(packed)
        if not self._segments or self._ends[-1] + need > len(self._segments[-1]):
            self._segments.append(mmap.mmap(-1, max(SEGMENT, need)))
            self._ends.append(0)
        segment, start = self._segments[-1], self._ends[-1]
        segment[start : start + _LEN] = len(packed).to_bytes(_LEN, "little")
        segment[start + _LEN : start + need] = packed
        self._ends[-1] = start + need
        self.count += 1

    def __iter__(self) -> Iterator[Values]:
        for segment, end in zip(self._segments, self._ends, strict=True):
            at = 0
            while at < end:
                size = int.from_bytes(segment[at : at + _LEN], "little")
                yield marshal.loads(segment[at + _LEN : at + _LEN + size])
                at += _LEN + size

    @property
    def nbytes(self) -> int:
        """Bytes written (what the packed records occupy)."""
        return sum(self._ends)

    def close(self) -> None:
        """Unmap the segments (their memory goes back to the OS at once)."""
        for segment in self._segments:
            segment.close()
        self._segments.clear()
        self._ends.clear()
