"""The cache as the daemon holds it: store, writer, counters and the call layer, opened together."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from policyd.cache.layer import CacheLayer
from policyd.cache.settings import CacheSettings
from policyd.cache.stats import CacheStats, Counters
from policyd.cache.store import ResponseStore, Usage
from policyd.cache.writer import BackgroundWriter

log = logging.getLogger(__name__)

CACHE_SUBDIR = "cache"


def cache_dir(data_dir: Path) -> Path:
    return data_dir / CACHE_SUBDIR


class ResponseCache:
    def __init__(self, directory: Path, settings: CacheSettings) -> None:
        self.directory = directory
        self.settings = settings
        self.stats = CacheStats()
        self.store = ResponseStore(directory, settings, self.stats)
        self.writer = BackgroundWriter(
            self.store,
            self.stats,
            max_pending=settings.max_pending_writes,
            stats_dir=directory,  # saved only where the store opens
            known_fresh_for_s=settings.reread_after_s,
        )
        self.layer = CacheLayer(
            self.store,
            self.writer,
            self.stats,
            default_ttl_s=settings.default_ttl_s,
            reread_after_s=settings.reread_after_s,
        )

    def counters(self) -> Counters:
        """This process's counts since it started."""
        return self.stats.snapshot()

    def usage(self) -> Usage:
        return self.store.usage()

    def close(self) -> None:
        """Store the queued answers, save the counters and close the shards."""
        self.writer.close()
        self.store.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def open_cache(settings: CacheSettings, data_dir: Path) -> ResponseCache | None:
    """The daemon's cache under ``data_dir/cache``, or None when ``cache.enabled`` is false."""
    if not settings.enabled:
        log.info("cache: disabled by configuration")
        return None
    return ResponseCache(cache_dir(data_dir), settings)
