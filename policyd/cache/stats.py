"""Cache counters: kept in memory, added to ``stats.json`` in the cache directory.

The daemon adds what it counted since the last save (every minute and on
shutdown), so totals survive restarts and several daemons sharing one directory
add up; ``policyd cache stats`` reads the file. A kill -9 loses at most the last
minute of counts, never entries.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATS_FILE = "stats.json"


@dataclass
class Counters:
    hits: int = 0
    misses: int = 0
    shared: int = 0
    """Calls answered by an identical call already in flight (single-flight)."""
    only_if_cached_misses: int = 0
    bypassed: int = 0
    writes: int = 0
    writes_dropped: int = 0
    """Answers not stored because the writer's queue was full."""
    corrupt_evicted: int = 0
    io_errors: int = 0
    """Failed reads or writes (full or read-only disk, locked database)."""
    saved_usd: float = 0.0

    def minus(self, other: Counters) -> Counters:
        return Counters(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def plus(self, other: Counters) -> Counters:
        return Counters(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


class CacheStats:
    """Thread-safe counters; the event loop and the writer thread both count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = Counters()
        self._saved = Counters()
        self.disabled_reason = ""
        """Why the cache runs as no cache (empty while it works)."""

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            setattr(self._now, name, getattr(self._now, name) + amount)

    def add_hits(self, count: int, saved_usd: float) -> None:
        """``count`` hits that saved ``saved_usd`` in all (one lock for both counters)."""
        with self._lock:
            now = self._now
            now.hits += count
            now.saved_usd += saved_usd

    def snapshot(self) -> Counters:
        with self._lock:
            return Counters(**asdict(self._now))

    def save(self, directory: Path) -> None:
        """Add the counts since the last save to ``directory/stats.json`` (atomic replace)."""
        now = self.snapshot()
        with self._lock:
            delta = now.minus(self._saved)
        path = directory / STATS_FILE
        totals = load_totals(directory).plus(delta)
        doc: dict[str, Any] = {"updated_at": time.time(), "totals": asdict(totals)}
        tmp = path.with_name(f".{STATS_FILE}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cache: cannot save counters to %s: %s", path, exc.strerror or exc)
            return
        with self._lock:
            self._saved = now


def load_totals(directory: Path) -> Counters:
    """Totals saved in ``directory/stats.json``; zeros when absent or unreadable."""
    try:
        doc = json.loads((directory / STATS_FILE).read_text(encoding="utf-8"))
        raw = doc["totals"]
        known = {f.name: type(getattr(Counters(), f.name)) for f in fields(Counters)}
        return Counters(**{k: known[k](v) for k, v in raw.items() if k in known and isinstance(v, (int, float))})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Counters()
