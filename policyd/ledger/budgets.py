"""Tenant and policy budgets: an admission step (``budget``) that reserves a request's worst case before its
first call and settles the real cost after it.

The worst case is the plan's own estimate (the Explanation's ``worst_usd``), never more
than the request's cost cap. The step then lowers the Turn's cost cap to what it
reserved (``Turn.hold``), so the StrategyContext (which checks every call's worst case before making
it) can never spend more than the reservation: budgets cannot be overspent however many
requests run at once. A plan whose estimate is too low ends budget-exhausted instead.

Over budget, ``budgets.on_exceeded`` says what happens: ``reject`` raises
ResourceExhausted naming the budget; ``downgrade`` runs the request on the cheapest plan,
which is the plan the operator's ``budgets.downgrade_policy`` yields for it (reserved
like any request; if even that does not fit, ResourceExhausted).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from policyd.config.model import Config
from policyd.engine.turn import Turn
from policyd.errors import PolicydError, ResourceExhausted, Unavailable
from policyd.ledger.checks import check_budgets
from policyd.ledger.settings import BudgetLimit, BudgetsSettings
from policyd.plugin.attribution import build, plugin_label
from policyd.plugin.specs import (
    BudgetLine,
    BudgetRefusal,
    BudgetStore,
    BudgetStoreContext,
    Registered,
)
from policyd.types import Outcome

log = logging.getLogger(__name__)


def budgets_of(config: Config) -> BudgetsSettings | None:
    return config.raw.budgets


def _periods(now: float) -> list[tuple[str, str, float, float]]:
    """(limit field, label, start, end) of the UTC day and month holding ``now``."""
    t = datetime.fromtimestamp(now, UTC)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return [
        ("daily_usd", day.strftime("%Y-%m-%d"), day.timestamp(), (day + timedelta(days=1)).timestamp()),
        ("monthly_usd", month.strftime("%Y-%m"), month.timestamp(), next_month.timestamp()),
    ]


def money(usd: float) -> str:
    """``$5.00``, ``$0.25``, and sub-dime limits without rounding them to nothing (``$0.004``)."""
    return f"${usd:,.2f}" if usd >= 0.1 else "$" + f"{usd:.8f}".rstrip("0")


def _scope_lines(scope: str, name: str, limit: BudgetLimit, now: float, **who: str | None) -> list[BudgetLine]:
    lines = []
    for attr, label, start, end in _periods(now):
        usd = getattr(limit, attr)
        if usd is not None:
            lines.append(
                BudgetLine(
                    name=f"{scope} {name!r} {attr.removesuffix('_usd')} budget ({money(usd)}, {label})",
                    key=json.dumps([scope, name, label]),
                    limit_usd=usd,
                    period_start=start,
                    period_end=end,
                    **who,
                )
            )
    return lines


def budget_lines(settings: BudgetsSettings, tenant: str, policy: str, now: float) -> list[BudgetLine]:
    """Every budget the request must fit: its tenant's (or ``"*"``'s) and its policy's."""
    lines: list[BudgetLine] = []
    tenant_limit = settings.tenants.get(tenant) or settings.tenants.get("*")
    if tenant_limit is not None:
        lines += _scope_lines("tenant", tenant, tenant_limit, now, tenant=tenant)
    policy_limit = settings.policies.get(policy)
    if policy_limit is not None:
        lines += _scope_lines("policy", policy, policy_limit, now, policy=policy)
    return lines


def refusal_message(refusal: BudgetRefusal, usd: float) -> str:
    line = refusal.line
    return (
        f"{line.name} is exhausted: ${refusal.spent_usd:.6f} spent and ${refusal.reserved_usd:.6f} reserved"
        f" of {money(line.limit_usd)}; this request may cost up to ${usd:.6f}"
    )


class BudgetLayer:
    """The ``budget`` admission step; admits at once a request no budget applies to.

    It reads the Turn's decision (policy, explanation, cost cap) and never re-decides,
    except on a downgrade, which is a new decision on the downgrade policy.
    """

    def __init__(self, store: BudgetStore, clock: Callable[[], float] = time.time, *, kind: str = "local") -> None:
        self.store = store
        self.clock = clock
        self.kind = kind

    async def _reserve(self, lines: list[BudgetLine], usd: float) -> BudgetRefusal | None:
        """A store that fails refuses the request (UNAVAILABLE): budgets fail closed."""
        try:
            return await self.store.reserve(lines, usd)
        except PolicydError:
            raise
        except Exception as exc:
            log.exception("budget store %r failed to reserve", self.kind)
            raise Unavailable(f"budget store {self.kind!r} is unavailable ({type(exc).__name__})") from exc

    async def _settle(self, lines: list[BudgetLine], reserved: float, spent: float) -> None:
        """A failed settlement is logged; the request was answered and keeps its answer."""
        try:
            await self.store.settle(lines, reserved, spent)
        except Exception:
            log.exception("budget store %r failed to settle $%.6f on %s", self.kind, spent, lines[0].name)

    @staticmethod
    def worst_usd(turn: Turn) -> float:
        """What to reserve: the plan's worst case, never more than the request's cost cap."""
        worst, cap = turn.explanation.worst_usd, turn.max_cost_usd
        return min(cap, worst) if worst > 0 else cap

    async def __call__(self, turn: Turn) -> Callable[[Outcome | None], Awaitable[None]] | None:
        settings = turn.config.raw.budgets
        if settings is None:
            return None
        now = self.clock()
        lines = budget_lines(settings, turn.request.tenant, turn.match.policy.name, now)
        if not lines:
            return None
        usd = self.worst_usd(turn)
        refusal = await self._reserve(lines, usd)
        if refusal is not None:
            lines, usd = await self._downgrade(turn, settings, refusal, usd, now)
            if not lines:  # the downgrade policy is under no budget of its own or of the tenant's
                return None
        turn.hold(usd)

        async def settle(outcome: Outcome | None) -> None:
            await self._settle(lines, usd, usd if outcome is None else outcome.total_cost_usd)

        return settle

    async def _downgrade(
        self, turn: Turn, settings: BudgetsSettings, refusal: BudgetRefusal, usd: float, now: float
    ) -> tuple[list[BudgetLine], float]:
        """Over budget: ResourceExhausted, or (``on_exceeded: downgrade``) the downgrade policy's reservation."""
        message = refusal_message(refusal, usd)
        floor = settings.downgrade_policy if settings.on_exceeded == "downgrade" else None
        if floor is None or floor == turn.match.policy.name:
            raise ResourceExhausted(message)
        turn.redecide(floor)
        lines = budget_lines(settings, turn.request.tenant, floor, now)
        usd = self.worst_usd(turn)
        again = await self._reserve(lines, usd) if lines else None
        if again is not None:
            raise ResourceExhausted(f"{message}; downgraded to policy {floor!r}: {refusal_message(again, usd)}")
        turn.notes.append(f"downgraded to policy {floor!r}: {message}")
        return lines, usd


def build_budget_store(
    config: Config,
    registered: Registered,
    context: BudgetStoreContext,
) -> BudgetStore | None:
    """The store ``budgets.store`` names, or None when the file has no ``budgets:`` section."""
    settings = budgets_of(config)
    store_settings = check_budgets(config.source, settings, config.policies, registered)
    if settings is None or store_settings is None:
        return None
    kind = settings.store.kind
    spec = registered.budget_stores[kind]
    label = plugin_label(registered, "budget_stores", kind)
    return build(label, f"budget store {kind!r}", spec.factory, store_settings, context)


Spend = Callable[..., Awaitable[float]]


def recorded_usd_from(spent: Spend) -> Callable[[BudgetLine], Awaitable[float]]:
    """Adapt the ledger's ``spent(since=, tenant=, policy=)`` to a store context's reader."""

    async def recorded(line: BudgetLine) -> float:
        return await spent(since=line.period_start, tenant=line.tenant, policy=line.policy)

    return recorded


__all__: Sequence[str] = ["BudgetLayer", "budget_lines", "build_budget_store"]
