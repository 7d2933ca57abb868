"""The ``cache:`` section of a policy file.

Per-policy switches (``plan.cache.enabled`` and ``plan.cache.ttl_s``) live on each
rule's plan; this section configures the store shared by every policy.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CacheSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Off: no cache is opened and every call goes upstream."""
    size_limit_mb: float = Field(default=1024, gt=0)
    """Disk space the entries may take; the least recently stored are evicted beyond it."""
    shards: int = Field(default=8, ge=1, le=64)
    """SQLite files the entries are spread over, so concurrent writers rarely wait on a lock.
    Fixed when the cache directory is first created."""
    default_ttl_s: int = Field(default=86_400, gt=0)
    """Lifetime of an entry whose plan sets no ``cache.ttl_s``."""
    max_pending_writes: int = Field(default=1024, ge=1)
    """Answers waiting for the background writer; beyond it new answers are not stored."""
    reread_after_s: float = Field(default=1.0, ge=0)
    """A hit read from disk less than this long ago is answered from memory; 0 reads the disk on every hit
    and every miss. Changes made by another process (``policyd cache clear``, another daemon, another
    worker's new answers: a miss skips the disk for keys never seen, ``policyd/cache/presence.py``)
    are seen within it."""
