"""The ledger's and the budgets' parts of the pipeline (called once, from ``build_daemon``).

:func:`open_ledger` returns the parts; the daemon places them in its pipeline
literal. Nothing here edits the engine or the daemon.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from policyd.config.model import Config
from policyd.datadir import ensure_private_dir
from policyd.engine.turn import Observe
from policyd.ledger.budgets import BudgetLayer, build_budget_store, recorded_usd_from
from policyd.ledger.ledger import Ledger
from policyd.ledger.settings import LedgerSettings
from policyd.plugin.specs import BudgetStoreContext, Registered

log = logging.getLogger(__name__)


@dataclass
class LedgerParts:
    ledger: Ledger | None
    """None when the data directory cannot hold one (the daemon serves without)."""
    record: Mapping[type, Observe] | None
    """The ``ledger`` record step."""
    budgets: BudgetLayer | None
    """The ``budget`` admission step (None without a ``budgets:`` section)."""
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def open_ledger(
    config: Config, registered: Registered, data_dir: Path, make: Callable[[Path, LedgerSettings], Ledger] = Ledger
) -> LedgerParts:
    """Open the ledger in the data directory and the budget store the file names.

    ``durability: batch`` records through a queue; ``sync`` commits before answering.
    A data directory that cannot hold the ledger (read-only, full) does not stop the
    daemon: it serves without one, says so in the log, and budgets count from zero.
    """
    settings = config.raw.ledger
    ledger: Ledger | None = None
    try:
        if settings.enabled:
            ledger = make(ensure_private_dir(data_dir), settings)  # a fleet's ledger ships it to PostgreSQL
        else:
            log.info("ledger: disabled by configuration")
    except (OSError, sqlite3.Error) as exc:
        log.warning(
            "cannot open the ledger in %s (%s): running without a ledger: outcomes are not recorded, "
            "ReportOutcome and GetStats are unavailable, budgets count from zero at each start",
            data_dir,
            getattr(exc, "strerror", None) or exc,
        )
        ledger = None
    try:
        store = build_budget_store(
            config,
            registered,
            BudgetStoreContext(
                data_dir=data_dir,
                recorded_usd=recorded_usd_from(ledger.spent if ledger is not None else _nothing_recorded),
            ),
        )
    except Exception:
        if ledger is not None:
            ledger.writer.close()
        raise
    parts = LedgerParts(ledger, ledger.observer() if ledger is not None else None, None)
    if ledger is not None:
        parts.closers.append(ledger.aclose)
    budgets = config.raw.budgets
    if store is not None and budgets is not None:
        parts.budgets = BudgetLayer(store, kind=budgets.store.kind)
        parts.closers.append(store.aclose)
    if ledger is not None:
        log.info("ledger %s (durability %s)%s", ledger.path, settings.durability, ", budgets on" if store else "")
    return parts


async def _nothing_recorded(**_: object) -> float:
    return 0.0
