"""The fleet's budgets in Valkey: the ``budget`` admission step on a store every replica shares.

Each budget line (a scope and a period) is a hash ``{spent, reserved}``; each reservation is
its own key ``hold:<id>`` with a TTL of the request's deadline, listed with its expiry in
the line's sorted set of holds. Reserve and settle are one server-side script each over all
lines of a request, so two replicas can never both take the last dollar. A replica that dies
mid-request leaks nothing past the deadline: the next script on that line reaps expired holds.

All budget keys share one hash tag (``{budgets}``), so the scripts are Cluster-safe (every key
of a call in one slot); budgets are a few small keys, well within one shard.

A line seen for the first time is seeded with what the ledger recorded in its scope since the
period began (with a PostgreSQL ledger, the whole fleet's spend), as the local store does.

When Valkey is down or slow, ``fleet.valkey.on_unavailable`` decides: ``fail_closed`` refuses
with UNAVAILABLE and the reason; ``fail_open`` admits on this daemon's own counters (starting
from the last totals Valkey reported) and pushes what it spent to Valkey once it answers.
Settlements that could not reach Valkey are kept and replayed, in order, at the next success.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from policyd.engine.turn import Turn
from policyd.fleet.settings import ValkeySettings
from policyd.fleet.valkey import Guard, StoreDown
from policyd.ledger.budgets import BudgetLayer
from policyd.plugin.specs import BudgetLine, BudgetRefusal
from policyd.types import Outcome

log = logging.getLogger(__name__)

EPSILON_USD = 1e-12
KEEP_AFTER_PERIOD_MS = 86_400_000
"""A line's keys outlive its period by a day (late settlements still land), then expire."""

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("policyd_budget_deadline", default=None)

# KEYS: per line i: line hash (2i-1), holds zset (2i); then the hold key.
# ARGV: usd, ttl_ms, member, n, then per line: limit, period_end_ms, seed ('' = unknown).
# Returns {0, spent_1, reserved_1, ...} admitted, {i, spent, reserved} refused on line i, {-1} seed needed.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local usd, ttl, member, n = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
for i = 1, n do
  local h, z, a = KEYS[2*i-1], KEYS[2*i], 4 + (i-1)*3
  if redis.call('EXISTS', h) == 0 then
    if ARGV[a+3] == '' then return {-1} end
    redis.call('HSET', h, 'spent', ARGV[a+3], 'reserved', '0')
    redis.call('PEXPIREAT', h, tonumber(ARGV[a+2]) + 86400000)
  end
  local dead = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #dead > 0 then
    local freed = 0
    for _, m in ipairs(dead) do freed = freed + tonumber(string.match(m, '|(.*)$')) end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    redis.call('HINCRBYFLOAT', h, 'reserved', -freed)
  end
end
local out = {0}
for i = 1, n do
  local h, a = KEYS[2*i-1], 4 + (i-1)*3
  local spent = tonumber(redis.call('HGET', h, 'spent'))
  local reserved = math.max(0, tonumber(redis.call('HGET', h, 'reserved')))
  if spent + reserved + usd > tonumber(ARGV[a+1]) + 1e-12 then
    return {i, tostring(spent), tostring(reserved)}
  end
  out[#out+1] = tostring(spent)
  out[#out+1] = tostring(reserved + usd)
end
for i = 1, n do
  local a = 4 + (i-1)*3
  redis.call('HINCRBYFLOAT', KEYS[2*i-1], 'reserved', usd)
  redis.call('ZADD', KEYS[2*i], now + ttl, member)
  redis.call('PEXPIREAT', KEYS[2*i], tonumber(ARGV[a+2]) + 86400000)
end
redis.call('SET', KEYS[2*n+1], ARGV[1], 'PX', ttl)
return out
"""

# KEYS as RESERVE. ARGV: member ('' = no hold: spend counted while Valkey was away), usd reserved, spent, n.
SETTLE = """
local member, usd, spent, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, n do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  if member ~= '' and redis.call('ZREM', z, member) == 1 then
    redis.call('HINCRBYFLOAT', h, 'reserved', -usd)
  end
  if redis.call('EXISTS', h) == 1 then
    redis.call('HINCRBYFLOAT', h, 'spent', spent)
  end
end
redis.call('DEL', KEYS[2*n+1])
return 1
"""


@dataclass(frozen=True)
class _Pending:
    """A settlement Valkey has not seen yet (replayed in order)."""

    lines: tuple[BudgetLine, ...]
    member: str
    reserved: float
    spent: float


class ValkeyBudgetStore:
    """A :class:`~policyd.plugin.specs.BudgetStore` shared by every replica on one Valkey."""

    def __init__(
        self,
        client: Any,
        settings: ValkeySettings,
        recorded_usd: Callable[[BudgetLine], Awaitable[float]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.settings = settings
        self.recorded_usd = recorded_usd
        self.clock = clock
        self.guard = Guard(settings, "budget store 'valkey'", clock)
        self._reserve = client.register_script(RESERVE)
        self._settle = client.register_script(SETTLE)
        self._held: dict[tuple[tuple[str, ...], float], deque[str]] = {}
        """This daemon's live holds by (line keys, usd); holds of equal lines and amounts are interchangeable."""
        self._pending: deque[_Pending] = deque()
        self._replaying = asyncio.Lock()
        self._local: dict[str, list[float]] = {}
        """fail_open: [spent, reserved] per line while Valkey is away (spent from Valkey's last answer)."""

    # ------------------------------------------------------------ keys

    def _keys(self, lines: Sequence[BudgetLine], hold: str) -> list[str]:
        base = f"{self.settings.prefix}:{{budgets}}"
        keys: list[str] = []
        for line in lines:
            keys += [f"{base}:line:{line.key}", f"{base}:holds:{line.key}"]
        return [*keys, f"{base}:hold:{hold}"]

    @staticmethod
    def _line_args(lines: Sequence[BudgetLine], seeds: Sequence[float] | None) -> list[Any]:
        args: list[Any] = []
        for i, line in enumerate(lines):
            args += [repr(line.limit_usd), int(line.period_end * 1000), "" if seeds is None else repr(seeds[i])]
        return args

    def _ttl_ms(self) -> int:
        deadline = _deadline.get()
        ttl = self.settings.reservation_ttl_s if deadline is None else max(0.0, deadline - self.clock())
        return max(1000, int(ttl * 1000) + 1000)  # a second's grace past the deadline for the settlement

    # ------------------------------------------------------------ reserve

    async def reserve(self, lines: Sequence[BudgetLine], usd: float) -> BudgetRefusal | None:
        deadline = _deadline.get()
        try:
            await self._replay(deadline)
            hold = uuid.uuid4().hex
            answer = await self._call_reserve(lines, usd, hold, deadline)
        except StoreDown as down:
            if self.settings.on_unavailable == "fail_closed":
                raise down.unavailable() from down
            return self._reserve_locally(lines, usd)
        if answer[0] != 0:
            i = int(answer[0]) - 1
            return BudgetRefusal(line=lines[i], spent_usd=float(answer[1]), reserved_usd=float(answer[2]))
        for i, line in enumerate(lines):  # the fleet's totals, where fail_open starts from
            self._local[line.key] = [float(answer[1 + 2 * i]), 0.0]
        self._held.setdefault(self._held_key(lines, usd), deque()).append(hold)
        return None

    async def _call_reserve(self, lines: Sequence[BudgetLine], usd: float, hold: str, deadline: float | None) -> Any:
        keys = self._keys(lines, hold)
        member = f"{hold}|{usd!r}"

        async def call(seeds: Sequence[float] | None) -> Any:
            args = [repr(usd), self._ttl_ms(), member, len(lines), *self._line_args(lines, seeds)]
            return await self._reserve(keys=keys, args=args)

        answer = await self.guard.run(lambda: call(None), deadline)
        if answer[0] == -1:  # first sight of a line this period: seed it from the ledger
            seeds = [await self.recorded_usd(line) for line in lines]
            answer = await self.guard.run(lambda: call(seeds), deadline)
        return answer

    def _reserve_locally(self, lines: Sequence[BudgetLine], usd: float) -> BudgetRefusal | None:
        """fail_open: admit against this daemon's counters (the fleet's last totals plus its own)."""
        for line in lines:
            spent, reserved = self._local.setdefault(line.key, [0.0, 0.0])
            if spent + reserved + usd > line.limit_usd + EPSILON_USD:
                return BudgetRefusal(line=line, spent_usd=spent, reserved_usd=reserved)
        for line in lines:
            self._local[line.key][1] += usd
        self._held.setdefault(self._held_key(lines, usd), deque()).append("")
        return None

    # ------------------------------------------------------------ settle

    async def settle(self, lines: Sequence[BudgetLine], reserved_usd: float, spent_usd: float) -> None:
        holds = self._held.get(self._held_key(lines, reserved_usd))
        hold = holds.popleft() if holds else ""
        member = f"{hold}|{reserved_usd!r}" if hold else ""
        if not hold:  # reserved locally (fail_open): release it here; the spend goes to Valkey below
            for line in lines:
                if line.key in self._local:
                    self._local[line.key][1] = max(0.0, self._local[line.key][1] - reserved_usd)
        for line in lines:
            if line.key in self._local:
                self._local[line.key][0] += spent_usd
        self._pending.append(_Pending(tuple(lines), member, reserved_usd, spent_usd))
        try:
            await self._replay(_deadline.get())
        except StoreDown:
            log.info("budget store 'valkey': %d settlement(s) kept until Valkey answers", len(self._pending))

    async def _replay(self, deadline: float | None) -> None:
        """Send the settlements Valkey has not seen, oldest first; stops at the first failure.

        One sender at a time keeps the order; a caller finding one at work leaves its
        settlement to it (the sender runs until the queue is empty)."""
        if self._replaying.locked():
            return
        async with self._replaying:
            while self._pending:
                await self.guard.run(self._send_oldest, deadline)
                self._pending.popleft()

    async def _send_oldest(self) -> Any:
        p = self._pending[0]
        hold = p.member.partition("|")[0] or uuid.uuid4().hex
        args = [p.member, repr(p.reserved), repr(p.spent), len(p.lines)]
        return await self._settle(keys=self._keys(p.lines, hold), args=args)

    @staticmethod
    def _held_key(lines: Sequence[BudgetLine], usd: float) -> tuple[tuple[str, ...], float]:
        return tuple(line.key for line in lines), usd

    def pending(self) -> int:
        """Settlements waiting for Valkey (for health and tests)."""
        return len(self._pending)

    async def usage(self, line_key: str) -> tuple[float, float]:
        """(spent, reserved) of a line in Valkey, for tests and ``policyd health``."""
        raw = await self.client.hmget(f"{self.settings.prefix}:{{budgets}}:line:{line_key}", "spent", "reserved")
        return float(raw[0] or 0), max(0.0, float(raw[1] or 0))

    async def aclose(self) -> None:
        if self._pending:
            try:
                await self._replay(self.clock() + self.settings.timeout_ms / 1000 * 4)
            except StoreDown:
                log.warning("budget store 'valkey': %d settlement(s) lost at shutdown", len(self._pending))


class FleetBudgetLayer(BudgetLayer):
    """The ``budget`` admission step on Valkey: hands the request's deadline to the store (the hold's TTL)."""

    store: ValkeyBudgetStore

    def __init__(self, store: ValkeyBudgetStore) -> None:
        super().__init__(store, kind="valkey")

    async def __call__(self, turn: Turn) -> Callable[[Outcome | None], Awaitable[None]] | None:
        token = _deadline.set(turn.request.deadline)
        try:
            return await super().__call__(turn)
        finally:
            _deadline.reset(token)
