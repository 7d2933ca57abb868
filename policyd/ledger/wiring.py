"""Attaches the ledger and the budgets to a daemon (called once, from ``build_daemon``)."""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

from policyd.ledger.budgets import BudgetLayer, budgets_of, build_budget_store, recorded_usd_from
from policyd.ledger.ledger import Ledger
from policyd.ledger.settings import LedgerSettings
from policyd.plugin.specs import BudgetStoreContext

if TYPE_CHECKING:
    from policyd.daemon import Daemon

log = logging.getLogger(__name__)


def install_ledger(daemon: Daemon) -> Ledger | None:
    """Open the ledger in the data directory, record every outcome, enforce budgets.

    ``durability: batch`` adds an outcome listener; ``sync`` adds an outermost request
    layer that commits before answering. The budget layer goes after the layers already
    installed (inside them), so an outer outcome cache answers hits without reserving.

    A data directory that cannot hold the ledger (read-only, full) does not stop the
    daemon: it serves without one, says so in the log, and budgets count from zero.
    """
    from policyd.daemon import ensure_private_dir

    engine = daemon.engine
    raw = daemon.config.raw
    settings = raw.ledger if raw is not None else LedgerSettings()
    ledger: Ledger | None = None
    try:
        if settings.enabled:
            ledger = Ledger(ensure_private_dir(daemon.data_dir), settings)
        else:
            log.info("ledger: disabled by configuration")
    except (OSError, sqlite3.Error) as exc:
        log.warning(
            "cannot open the ledger in %s (%s): running without a ledger: outcomes are not recorded, "
            "ReportOutcome and GetStats are unavailable, budgets count from zero at each start",
            daemon.data_dir,
            getattr(exc, "strerror", None) or exc,
        )
        ledger = None
    if ledger is not None:
        if ledger.sync:
            engine.request_layers.insert(0, ledger.sync_layer)
        else:
            engine.listeners.append(ledger.listener)
    try:
        store = build_budget_store(
            daemon.config,
            daemon.registered,
            BudgetStoreContext(
                data_dir=daemon.data_dir,
                recorded_usd=recorded_usd_from(ledger.spent if ledger is not None else _nothing_recorded),
            ),
        )
    except Exception:
        if ledger is not None:
            ledger.writer.close()
        raise
    if ledger is not None:
        daemon.closers.append(ledger.aclose)
    budgets = budgets_of(daemon.config)
    if store is not None and budgets is not None:
        engine.request_layers.append(BudgetLayer(engine, store, kind=budgets.store.kind))
        daemon.closers.append(store.aclose)
    daemon.ledger = ledger
    if ledger is not None:
        log.info("ledger %s (durability %s)%s", ledger.path, settings.durability, ", budgets on" if store else "")
    return ledger


async def _nothing_recorded(**_: object) -> float:
    return 0.0
