"""Checks of the ``budgets:`` section against the rest of the file and the registered stores.

They run when the file loads (``load_text``), so ``policyd check``, boot and hot reloads all
refuse a budget naming a policy that does not exist or a store nobody registered; before,
only boot noticed some of them and ``policyd check`` answered OK.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from policyd.errors import ConfigError
from policyd.ledger.settings import BudgetsSettings
from policyd.plugin.specs import Registered


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def check_budgets(
    source: str, budgets: BudgetsSettings | None, policies: Mapping[str, Any], registered: Registered
) -> BaseModel | None:
    """Raise ConfigError naming the key at fault; return the store's validated settings (None: no budgets)."""
    if budgets is None:
        return None
    floor = budgets.downgrade_policy
    if floor is not None and floor not in policies:
        raise ConfigError(source, "budgets.downgrade_policy", f"unknown policy {floor!r} (known: {_known(policies)})")
    for name in budgets.policies:
        if name not in policies:
            problem = f"unknown policy {name!r} (known: {_known(policies)})"
            raise ConfigError(source, f"budgets.policies.{name}", problem)
    kind = budgets.store.kind
    spec = registered.budget_stores.get(kind)
    if spec is None:
        known = _known(registered.budget_stores)
        raise ConfigError(source, "budgets.store.kind", f"unknown budget store {kind!r} (known: {known})")
    try:
        return spec.settings.model_validate(budgets.store_settings())
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join(["budgets.store", *(str(part) for part in err["loc"])])
        raise ConfigError(source, path, str(err["msg"])) from None
