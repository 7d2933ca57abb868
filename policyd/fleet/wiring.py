"""The fleet's parts of the pipeline (called once, from ``build_daemon``): the shared ``rate-limit``
and ``budget`` admission steps, and their health. Without a ``fleet:`` section, nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyd.config.model import Config
from policyd.fleet.checks import check_fleet
from policyd.fleet.settings import FleetSettings
from policyd.ledger.ledger import Ledger
from policyd.ledger.settings import LedgerSettings

if TYPE_CHECKING:  # the fleet's modules load only when the policy file has ``fleet:`` (docs/deploy.md, "Start-up")
    from policyd.fleet.budgets import FleetBudgetLayer
    from policyd.fleet.cache import SharedCacheLayer
    from policyd.fleet.postgres import PostgresLedger
    from policyd.fleet.ratelimit import ValkeyRateLimiter

log = logging.getLogger(__name__)


@dataclass
class FleetParts:
    limiter: ValkeyRateLimiter | None = None
    """The ``rate-limit`` step on Valkey (None: each daemon's own buckets)."""
    budgets: FleetBudgetLayer | None = None
    """The ``budget`` step on Valkey (None: no ``budgets:`` section, or no ``fleet.valkey``)."""
    cache: SharedCacheLayer | None = None
    """The ``shared-cache`` call layer (L2 behind the disk cache; None: no shared tier)."""
    client: Any = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    ledger: PostgresLedger | None = None
    """The fleet ledger (``fleet.postgres``), which is also the daemon's ledger."""

    async def health(self) -> dict[str, str]:
        """Each shared store's state, ``{"valkey": "ok", "postgres": ...}`` or why not (``policyd health``)."""
        states: dict[str, str] = {}
        if self.client is not None:
            try:
                await self.client.ping()
                pending = self.budgets.store.pending() if self.budgets is not None else 0
                states["valkey"] = "ok" if not pending else f"ok, {pending} settlement(s) being replayed"
            except Exception as exc:
                from policyd.fleet.valkey import reason_of

                states["valkey"] = f"unavailable: {reason_of(exc)}"
        if self.ledger is not None:
            states["postgres"] = await self.ledger.health()
        return states


def ledger_maker(config: Config) -> Callable[[Path, LedgerSettings], Ledger]:
    """How to open the ledger: the local one, shipped to PostgreSQL when the file has ``fleet.postgres``."""
    fleet = fleet_of(config)
    if fleet is None or fleet.postgres is None:
        return Ledger
    pg = fleet.postgres
    check_fleet(config)  # an unset variable or a wrong address fails at start, naming the key
    from policyd.fleet.postgres import PostgresLedger

    def make(data_dir: Path, settings: LedgerSettings) -> Ledger:
        return PostgresLedger(data_dir, settings, fleet=pg)

    return make


def fleet_of(config: Config) -> FleetSettings | None:
    fleet: FleetSettings | None = getattr(config.raw, "fleet", None)
    return fleet


def _shipped(fleet: FleetSettings | None, ledger: Ledger | None) -> PostgresLedger | None:
    """The ledger when it ships to PostgreSQL (``ledger_maker`` made it for ``fleet.postgres``)."""
    if fleet is None or fleet.postgres is None:
        return None
    from policyd.fleet.postgres import PostgresLedger

    return ledger if isinstance(ledger, PostgresLedger) else None


def open_fleet(config: Config, ledger: Ledger | None) -> FleetParts:
    fleet = fleet_of(config)
    shipped = _shipped(fleet, ledger)
    if fleet is None or fleet.valkey is None:
        return FleetParts(ledger=shipped)
    from policyd.fleet.budgets import FleetBudgetLayer, ValkeyBudgetStore
    from policyd.fleet.cache import SharedCacheLayer
    from policyd.fleet.ratelimit import ValkeyRateLimiter
    from policyd.fleet.valkey import connect
    from policyd.ledger.budgets import recorded_usd_from

    settings = fleet.valkey
    check_fleet(config)
    client = connect(settings)
    parts = FleetParts(client=client, ledger=shipped)
    if settings.rate_limits:
        parts.limiter = ValkeyRateLimiter(client, settings)
    if settings.cache and config.raw.cache.enabled:
        parts.cache = SharedCacheLayer(client, settings)
    budgets = config.raw.budgets
    if budgets is not None:
        spent = ledger.spent if ledger is not None else _nothing_recorded
        store = ValkeyBudgetStore(client, settings, recorded_usd_from(spent))
        parts.budgets = FleetBudgetLayer(store)
        parts.closers.append(store.aclose)

    async def close_client() -> None:
        await client.aclose()

    parts.closers.insert(0, close_client)  # closers run in reverse: the client closes last
    log.info(
        "fleet: Valkey for %s (on_unavailable %s)",
        ", ".join(
            p for p, on in (("rate limits", parts.limiter), ("budgets", parts.budgets), ("cache", parts.cache)) if on
        )
        or "nothing",
        settings.on_unavailable,
    )
    return parts


async def _nothing_recorded(**_: object) -> float:
    return 0.0
