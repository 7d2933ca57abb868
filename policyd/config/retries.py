"""The ``retries:`` section: how the engine retries failed upstream calls and when it stops trying.

Owned by :mod:`policyd.engine.retry`; kept here, beside the schema, so the config
package never imports the engine.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class BreakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    failures: int = Field(default=5, ge=1)
    """Consecutive retryable failures of one provider instance that open its circuit."""
    open_s: float = Field(default=10.0, gt=0)
    """How long an open circuit refuses calls before one probe may go through (longer if Retry-After says so)."""
    scope: Literal["provider", "model"] = "provider"
    """``provider``: one circuit per provider instance (the upstream is down). ``model``: one per
    provider instance and upstream model, for gateways (OpenRouter, a vLLM fleet) where one model
    can fail while the others on the same endpoint answer."""


class RetriesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=3, ge=1, le=10)
    """Upstream requests per model call, the first included; 1 disables retries."""
    budget_ratio: float = Field(default=0.2, ge=0, le=1)
    """Calls that may be retrying at once, as a share of the calls in flight..."""
    min_retries: int = Field(default=3, ge=0)
    """...but never fewer than this many."""
    backoff_base_s: float = Field(default=0.25, gt=0)
    """First backoff ceiling; doubles per attempt (full jitter: a random wait up to the ceiling)."""
    backoff_max_s: float = Field(default=8.0, gt=0)
    breaker: BreakerConfig = BreakerConfig()
