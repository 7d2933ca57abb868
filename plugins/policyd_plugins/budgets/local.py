"""The ``local`` budget store: counters in this daemon's memory, seeded from its ledger.

Reservations live only in memory: they belong to requests in flight in this process,
which a restart ends anyway. Spend is seeded, the first time a budget line (a scope
and a period) is seen after start-up, from what the ledger recorded in that scope
since the period began, so a restart does not hand out the day's budget again.

Atomicity comes from the event loop: the check-and-add in :meth:`reserve` runs without
awaiting, and the only await (seeding) happens under a lock before it. One daemon per
data directory; several replicas need a shared store (see ``docs/ledger.md``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from policyd.api import BudgetLine, BudgetRefusal, BudgetStoreContext

EPSILON_USD = 1e-12


class LocalBudgetStore:
    def __init__(self, settings: Any, context: BudgetStoreContext) -> None:
        self._context = context
        self._spent: dict[str, float] = {}
        self._reserved: dict[str, float] = {}
        self._ends: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def reserve(self, lines: Sequence[BudgetLine], usd: float) -> BudgetRefusal | None:
        async with self._lock:
            for line in lines:
                if line.key not in self._spent:
                    self._forget_ended()
                    self._spent[line.key] = await self._context.recorded_usd(line)
                    self._reserved[line.key] = 0.0
                    self._ends[line.key] = line.period_end
            for line in lines:
                spent, reserved = self._spent[line.key], self._reserved[line.key]
                if spent + reserved + usd > line.limit_usd + EPSILON_USD:
                    return BudgetRefusal(line=line, spent_usd=spent, reserved_usd=reserved)
            for line in lines:
                self._reserved[line.key] += usd
            return None

    async def settle(self, lines: Sequence[BudgetLine], reserved_usd: float, spent_usd: float) -> None:
        for line in lines:
            if line.key in self._spent:
                self._reserved[line.key] = max(0.0, self._reserved[line.key] - reserved_usd)
                self._spent[line.key] += spent_usd

    def usage(self, key: str) -> tuple[float, float]:
        """(spent, reserved) of a line key, for tests and diagnostics."""
        return self._spent.get(key, 0.0), self._reserved.get(key, 0.0)

    def _forget_ended(self) -> None:
        now = time.time()
        for key in [k for k, end in self._ends.items() if end <= now and not self._reserved.get(k)]:
            self._spent.pop(key, None)
            self._reserved.pop(key, None)
            self._ends.pop(key, None)

    async def aclose(self) -> None:
        return None
