"""The ``fleet:`` section of the policy file (pydantic only: ``policyd.config.schema`` imports it).

Addresses and credentials come from the environment or files, never from the policy file
itself, so one file serves every environment and no secret lands in a ConfigMap::

    fleet:
      valkey:
        url_env: POLICYD_VALKEY_URL        # redis://host:6379/0, rediss:// for TLS
        password_file: /var/run/secrets/valkey/password
        on_unavailable: fail_closed        # or fail_open
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValkeySettings(_Strict):
    """Valkey (or Redis OSS 7+): shared budgets and per-tenant rate limits."""

    url_env: str = "POLICYD_VALKEY_URL"
    """Environment variable holding the URL: ``redis://host:port/db`` or ``rediss://`` (TLS)."""
    password_env: str | None = None
    """Variable holding the password (overrides one in the URL); never logged."""
    password_file: Path | None = None
    """File holding the password (a mounted Secret); read at start."""
    username: str | None = None
    """ACL user (Redis 6+/Valkey); None: the URL's, else ``default``."""
    tls_ca_file: Path | None = None
    """CA bundle to verify the server with ``rediss://`` URLs; None: the system's."""
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    timeout_ms: int = Field(default=250, gt=0, le=60_000)
    """Longest a request waits on one Valkey operation (never past the request's deadline)."""
    on_unavailable: Literal["fail_closed", "fail_open"] = "fail_closed"
    """``fail_closed``: refuse with UNAVAILABLE and the reason. ``fail_open``: admit on this
    daemon's own counters and push what was spent to Valkey once it answers again."""
    retry_after_ms: int = Field(default=1000, gt=0, le=60_000)
    """After a failure, how long requests skip Valkey (and take ``on_unavailable`` at once)."""
    prefix: str = Field(default="policyd", pattern=r"^[A-Za-z0-9_.:-]+$")
    """Namespace of every key, so several deployments can share one server."""
    max_connections: int = Field(default=64, gt=0, le=10_000)
    reservation_ttl_s: float = Field(default=600.0, gt=0)
    """Lifetime of a budget reservation for a request without a deadline."""
    rate_limits: bool = True
    """Share the ``limits.rate`` buckets across the fleet (else each daemon keeps its own)."""
    cache: bool = True
    """A shared cache tier (L2) behind each daemon's disk cache, with single-flight across replicas."""
    cache_max_entry_bytes: int = Field(default=256 * 1024, gt=0, le=64 * 1024 * 1024)
    """Larger answers stay in the disk cache only."""
    cache_max_ttl_s: float = Field(default=86_400.0, gt=0)
    """No shared entry outlives this, whatever the plan's ``cache.ttl_s``."""
    cache_wait_ms: int = Field(default=10_000, gt=0, le=600_000)
    """How long a replica waits for another's identical upstream call before making its own."""

    def url(self) -> str:
        value = os.environ.get(self.url_env, "")
        if not value:
            raise ValueError(f"fleet.valkey.url_env: environment variable {self.url_env} is not set or empty")
        return value

    def password(self) -> str | None:
        return _secret("fleet.valkey", self.password_env, self.password_file)


class PostgresSettings(_Strict):
    """PostgreSQL: the fleet's ledger (outcomes, reports, stats, spend), fed from each daemon's local spool."""

    dsn_env: str = "POLICYD_POSTGRES_DSN"
    """Environment variable holding the DSN: ``postgresql://user@host:5432/db?sslmode=verify-full``."""
    password_env: str | None = None
    """Variable holding the password (overrides one in the DSN); never logged."""
    password_file: Path | None = None
    """File holding the password (a mounted Secret); read at start."""
    tls_ca_file: Path | None = None
    """CA bundle to verify the server with (sets ``sslrootcert``; use ``sslmode=verify-full`` in the DSN)."""
    timeout_ms: int = Field(default=2000, gt=0, le=600_000)
    """Longest a ReportOutcome, GetStats or shipment waits on PostgreSQL."""
    ship_interval_ms: int = Field(default=200, gt=0, le=600_000)
    """How often the local spool (the SQLite ledger) is shipped; a failed shipment retries after it."""
    ship_batch: int = Field(default=1000, gt=0, le=100_000)
    pool_size: int = Field(default=4, gt=0, le=1000)

    def dsn(self) -> str:
        value = os.environ.get(self.dsn_env, "")
        if not value:
            raise ValueError(f"fleet.postgres.dsn_env: environment variable {self.dsn_env} is not set or empty")
        return value

    def password(self) -> str | None:
        return _secret("fleet.postgres", self.password_env, self.password_file)


def _secret(where: str, env: str | None, path: Path | None) -> str | None:
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ValueError(f"{where}.password_env: environment variable {env} is not set")
        return value
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{where}.password_file: cannot read {path}: {exc.strerror}") from exc
    return None


class FleetSettings(_Strict):
    """Shared state for several daemons; absent: each daemon keeps its own (the default)."""

    valkey: ValkeySettings | None = None
    postgres: PostgresSettings | None = None
