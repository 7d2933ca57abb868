"""policyd's built-in budget store, registered through the public hooks like any plugin."""

from __future__ import annotations

from collections.abc import Callable

from policyd.plugin import hookimpl
from policyd.plugin.specs import BudgetStoreSpec
from policyd_budgets.local import LocalBudgetStore


@hookimpl
def policyd_register_budget_stores(register: Callable[[BudgetStoreSpec], None]) -> None:
    register(BudgetStoreSpec(kind="local", factory=LocalBudgetStore))
