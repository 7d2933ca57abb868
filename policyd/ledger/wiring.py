"""Attaches the ledger and the budgets to a daemon (called once, from ``build_daemon``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from policyd.ledger.budgets import BudgetLayer, budgets_of, build_budget_store, recorded_usd_from
from policyd.ledger.ledger import Ledger
from policyd.ledger.settings import LedgerSettings
from policyd.plugin.specs import BudgetStoreContext

if TYPE_CHECKING:
    from policyd.daemon import Daemon

log = logging.getLogger(__name__)


def install_ledger(daemon: Daemon) -> Ledger:
    """Open the ledger in the data directory, record every outcome, enforce budgets.

    ``durability: batch`` adds an outcome listener; ``sync`` adds an outermost request
    layer that commits before answering. The budget layer goes after the layers already
    installed (inside them), so an outer outcome cache answers hits without reserving.
    """
    from policyd.daemon import ensure_private_dir

    engine = daemon.engine
    raw = daemon.config.raw
    ledger = Ledger(ensure_private_dir(daemon.data_dir), raw.ledger if raw is not None else LedgerSettings())
    if ledger.sync:
        engine.request_layers.insert(0, ledger.sync_layer)
    else:
        engine.listeners.append(ledger.listener)
    try:
        store = build_budget_store(
            daemon.config,
            daemon.registered,
            BudgetStoreContext(data_dir=daemon.data_dir, recorded_usd=recorded_usd_from(ledger.spent)),
        )
    except Exception:
        ledger.writer.close()
        raise
    daemon.closers.append(ledger.aclose)
    budgets = budgets_of(daemon.config)
    if store is not None and budgets is not None:
        engine.request_layers.append(BudgetLayer(engine, store, kind=budgets.store.kind))
        daemon.closers.append(store.aclose)
    daemon.ledger = ledger
    log.info("ledger %s (durability %s)%s", ledger.path, ledger.settings.durability, ", budgets on" if store else "")
    return ledger
