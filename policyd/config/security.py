"""The ``auth:`` and ``limits:`` sections: who may call, and how much.

Owned by :mod:`policyd.server.auth` (tokens, mTLS, per-tenant policies) and by the
server's limits (message sizes, concurrency, per-tenant rates). Kept beside the
schema so the config package never imports the server.

Tokens are never written in the file: only their SHA-256 digests
(``policyd hash-token`` prints one), so a leaked policy file grants nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policyd.errors import ConfigError

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MIB = 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Strict):
    """Serve TLS; with ``client_ca_file`` every client must present a certificate it signed (mTLS)."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None


class TenantAuth(_Strict):
    """How a caller proves it is this tenant, and what the tenant may use."""

    token_sha256: list[str] = []
    """SHA-256 hex digests of the bearer tokens that are this tenant (several allow rotation)."""
    client_cert_cn: list[str] = []
    """With mTLS: client certificate common names that are this tenant."""
    policies: list[str] | None = None
    """Policies the tenant may run; None: any."""
    all_stats: bool = False
    """GetStats may show every tenant's figures; otherwise only its own."""

    @field_validator("token_sha256")
    @classmethod
    def _digests(cls, value: list[str]) -> list[str]:
        for i, digest in enumerate(value):
            if not _SHA256_HEX.match(digest):
                raise ValueError(
                    f"[{i}] must be 64 lower-case hex digits (a SHA-256 digest from `policyd hash-token`), not a token"
                )
        return value


class AuthConfig(_Strict):
    """Present: every PolicyService call must authenticate. Health and reflection stay open."""

    tenants: dict[str, TenantAuth] = Field(min_length=1)
    tls: TlsConfig | None = None

    @model_validator(mode="after")
    def _unique_credentials(self) -> AuthConfig:
        owner: dict[str, str] = {}
        for tenant, cfg in self.tenants.items():
            if not cfg.token_sha256 and not cfg.client_cert_cn:
                raise ValueError(f"tenants.{tenant}: needs token_sha256 or client_cert_cn")
            for cred in [*cfg.token_sha256, *(f"cn:{cn}" for cn in cfg.client_cert_cn)]:
                if cred in owner and owner[cred] != tenant:
                    raise ValueError(f"tenants.{tenant}: a credential is also given to tenant {owner[cred]!r}")
                owner[cred] = tenant
        if any(cfg.client_cert_cn for cfg in self.tenants.values()) and (
            self.tls is None or self.tls.client_ca_file is None
        ):
            raise ValueError("client_cert_cn needs mTLS: set tls.cert_file, tls.key_file and tls.client_ca_file")
        return self


class RateConfig(_Strict):
    """Token buckets refilled every minute; a burst may spend one minute's worth at once."""

    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    """Input and output tokens of the calls made upstream (cache hits are free)."""


class LimitsConfig(_Strict):
    """Bounds on every request. Sizes and concurrency apply at start-up; the rest on reload too."""

    max_receive_message_bytes: int = Field(default=4 * MIB, ge=1024)
    max_send_message_bytes: int = Field(default=16 * MIB, ge=1024)
    max_concurrent_rpcs: int | None = Field(default=1024, gt=0)
    """RPCs in progress at once (health checks included); past it, RESOURCE_EXHAUSTED at once."""
    max_messages: int = Field(default=1000, gt=0)
    max_tools: int = Field(default=256, gt=0)
    max_output_tokens: int = Field(default=65_536, gt=0)
    """Largest ``params.max_output_tokens`` a request may ask for."""
    rate: RateConfig = RateConfig()
    """Every tenant's rate, unless ``tenants`` names it."""
    tenants: dict[str, RateConfig] = {}
    idempotency_window_s: float = Field(default=600.0, ge=0, le=7 * 24 * 3600)
    """How long a caller-set request_id stays an idempotency key (per tenant); 0 turns it off."""
    idempotency_max_keys: int = Field(default=100_000, gt=0)
    """Keys remembered at most; past it the oldest are dropped first."""

    def rate_for(self, tenant: str) -> RateConfig:
        return self.tenants.get(tenant, self.rate)


def check_security_sections(source: str, auth: AuthConfig | None, policies: Mapping[str, Any]) -> None:
    """Cross-section checks the schema cannot make: tenants' policies must exist."""
    if auth is None:
        return
    for tenant, cfg in auth.tenants.items():
        for i, name in enumerate(cfg.policies or []):
            if name not in policies:
                known = ", ".join(sorted(policies))
                where = f"auth.tenants.{tenant}.policies[{i}]"
                raise ConfigError(source, where, f"unknown policy {name!r} (known: {known})")
