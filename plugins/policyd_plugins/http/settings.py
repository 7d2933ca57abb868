"""Settings every HTTP provider instance shares: where, how to authenticate, pool and timeouts.

Provider plugins subclass :class:`HttpSettings` with their own fields. The key
settings are checked when the policy file loads, so a missing environment variable
fails ``policyd check`` with the key path rather than the first request with a 401.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policyd_plugins.http.secrets import ApiKey

_FORBIDDEN_HEADERS = {"authorization", "x-api-key", "x-goog-api-key", "api-key"}


class Timeouts(BaseModel):
    """Seconds. The total is further cut to the call's remaining deadline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_s: float = Field(default=5.0, gt=0)
    """Opening the TCP (and TLS) connection."""
    first_byte_s: float = Field(default=60.0, gt=0)
    """From sending the request to the first byte of the response body."""
    between_chunks_s: float = Field(default=30.0, gt=0)
    """Longest silence between two reads of the body once it started."""
    total_s: float = Field(default=600.0, gt=0)
    """The whole request; never more than the call's own timeout."""


def effort_budgets(value: object, defaults: dict[str, int], minimum: int) -> dict[str, int]:
    """Validates a ``{effort: tokens}`` table, filling levels left out from ``defaults``.

    YAML 1.1 reads an unquoted ``off:`` key as False, so that key is read as ``off``.
    """
    if not isinstance(value, dict):
        raise ValueError("must be a mapping of effort level to tokens")
    table = {("off" if k is False else str(k)): v for k, v in value.items()}
    unknown = sorted(set(table) - set(defaults))
    if unknown:
        raise ValueError(f"unknown effort level(s) {', '.join(unknown)} (known: {', '.join(defaults)})")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in table.values()):
        raise ValueError("budgets must be whole numbers of tokens")
    small = sorted(k for k, v in table.items() if v < minimum)
    if small:
        raise ValueError(f"budgets must be at least {minimum} (too small: {', '.join(small)})")
    return {**defaults, **table}


class HttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    headers: dict[str, str] = {}
    """Extra request headers (e.g. OpenRouter's ``HTTP-Referer``); never put keys here."""
    api_key_env: str | None = None
    """Environment variable holding the API key."""
    api_key_file: str | None = None
    """File holding the API key (a Kubernetes Secret mount); re-read when it changes."""
    pool_size: int = Field(default=64, ge=1, le=4096)
    """Connections kept open to the upstream (also the limit of concurrent requests)."""
    timeouts: Timeouts = Timeouts()
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """A larger response is refused as malformed rather than buffered."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (got {value!r})")
        if "?" in value or "#" in value:
            raise ValueError("must not carry a query or fragment (keys go in headers, never in URLs)")
        return value.rstrip("/")

    @field_validator("headers")
    @classmethod
    def _no_key_headers(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in value if k.lower() in _FORBIDDEN_HEADERS)
        if bad:
            raise ValueError(f"{', '.join(bad)} must not be set here; use api_key_env or api_key_file")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _env_is_set(cls, value: str | None) -> str | None:
        if value is not None:
            ApiKey(env=value)
        return value

    @field_validator("api_key_file")
    @classmethod
    def _file_is_readable(cls, value: str | None) -> str | None:
        if value is not None:
            ApiKey(file=value)
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> Self:
        if self.api_key_env and self.api_key_file:
            raise ValueError("set api_key_env or api_key_file, not both")
        return self

    def api_key(self) -> ApiKey | None:
        if self.api_key_env or self.api_key_file:
            return ApiKey(env=self.api_key_env, file=self.api_key_file)
        return None
