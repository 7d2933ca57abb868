"""policyd's built-in budget store, registered through the public hooks like any plugin."""

from __future__ import annotations

from collections.abc import Callable

from policyd.api import BudgetStoreSpec, hookimpl
from policyd_plugins.budgets.local import LocalBudgetStore

POLICYD_API = "1.0"
"""The plugin API this plugin is written for (see docs/plugins.md)."""


@hookimpl
def policyd_register_budget_stores(register: Callable[[BudgetStoreSpec], None]) -> None:
    register(BudgetStoreSpec(kind="local", factory=LocalBudgetStore))
