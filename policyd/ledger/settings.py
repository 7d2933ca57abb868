"""The ``ledger:`` and ``budgets:`` sections of the policy file (pydantic only, no imports
from the engine, because ``policyd.config.schema`` imports this module)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LedgerSettings(_Strict):
    """How outcomes reach the ledger file.

    ``batch`` (the default) commits off the response path: an outcome is durable once
    the batch holding it commits, at most ``flush_interval_ms`` (plus one commit) after
    the reply, or sooner when ``max_batch`` records are waiting. ``sync`` commits the
    outcome (group-committed with its concurrent neighbours) before the reply is sent.
    """

    enabled: bool = True
    """``false``: no ledger (no outcomes, ReportOutcome and GetStats unavailable, budgets from zero)."""
    durability: Literal["batch", "sync"] = "batch"
    flush_interval_ms: int = Field(default=50, gt=0, le=60_000)
    max_batch: int = Field(default=500, gt=0, le=100_000)
    max_pending: int = Field(default=100_000, gt=0)
    """Records waiting for a commit beyond this are dropped (and counted in the log)."""


class BudgetLimit(_Strict):
    """USD limits of one scope; a period without a limit is unlimited."""

    daily_usd: float | None = Field(default=None, gt=0)
    """Per UTC calendar day."""
    monthly_usd: float | None = Field(default=None, gt=0)
    """Per UTC calendar month."""


class BudgetStoreConfig(BaseModel):
    """A budget store instance: ``kind`` picks the plugin, the rest are its settings."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str = "local"


class BudgetsSettings(_Strict):
    """Tenant and policy budgets; a request must fit every budget that applies to it."""

    tenants: dict[str, BudgetLimit] = {}
    """Per tenant; ``"*"`` applies to each tenant that has no entry of its own, separately."""
    policies: dict[str, BudgetLimit] = {}
    """Per policy, all tenants together."""
    on_exceeded: Literal["reject", "downgrade"] = "reject"
    """``reject``: RESOURCE_EXHAUSTED naming the budget. ``downgrade``: run the request on
    ``downgrade_policy`` (the cheapest plan) if that still fits."""
    downgrade_policy: str | None = None
    """The policy an over-budget request is routed to under ``on_exceeded: downgrade``: write
    there the plans you consider cheapest (e.g. one unvalidated call to a small model)."""
    store: BudgetStoreConfig = BudgetStoreConfig()

    @model_validator(mode="after")
    def _downgrade_needs_a_policy(self) -> BudgetsSettings:
        if self.on_exceeded == "downgrade" and not self.downgrade_policy:
            raise ValueError("on_exceeded 'downgrade' needs downgrade_policy: the policy to route to")
        return self

    def store_settings(self) -> dict[str, Any]:
        return dict(self.store.model_extra or {})
