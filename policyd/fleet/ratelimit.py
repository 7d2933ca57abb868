"""Per-tenant rate limits shared by the fleet: the ``rate-limit`` admission step on Valkey.

The same token buckets as :mod:`policyd.engine.ratelimit` (one minute's worth, refilled
continuously, tokens settled at the real usage), kept in one Valkey hash per tenant and
updated by one server-side script on the server's clock, so every replica draws from the
same bucket. A tenant's keys share a hash tag (Cluster-safe). Limits still come from the
Turn's pinned config. When Valkey does not answer in time, ``fail_closed`` refuses with
UNAVAILABLE; ``fail_open`` falls back to this daemon's own buckets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from policyd.engine import tokens
from policyd.engine.ratelimit import TenantRateLimiter, spent_tokens
from policyd.engine.turn import Turn
from policyd.errors import ResourceExhausted
from policyd.fleet.settings import ValkeySettings
from policyd.fleet.valkey import Guard, StoreDown
from policyd.types import Outcome

# KEYS[1] the tenant's hash. ARGV: requests/min (0 = none), tokens/min (0 = none), estimate.
# Fields: r, t (levels), rt, tt (last refill, ms). Returns {0} admitted, {1, wait_ms} requests, {2, wait_ms} tokens.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm, est = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function level(field, stamp, per_min)
  local v = redis.call('HMGET', KEYS[1], field, stamp, field .. 'p')
  local lvl, at = tonumber(v[1]), tonumber(v[2])
  if lvl == nil or tonumber(v[3]) ~= per_min then return per_min end
  return math.min(per_min, lvl + (now - at) * per_min / 60000)
end
local r = rpm > 0 and level('r', 'rt', rpm) or 0
local k = tpm > 0 and level('t', 'tt', tpm) or 0
if rpm > 0 and r < 1 then return {1, math.ceil((1 - r) * 60000 / rpm)} end
if tpm > 0 then
  local need = math.min(est, tpm)
  if k < need or k <= 0 then return {2, math.ceil((math.max(need, 1) - k) * 60000 / tpm)} end
  redis.call('HSET', KEYS[1], 't', tostring(k - est), 'tt', now, 'tp', tpm)
end
if rpm > 0 then redis.call('HSET', KEYS[1], 'r', tostring(r - 1), 'rt', now, 'rp', rpm) end
redis.call('PEXPIRE', KEYS[1], 120000)
return {0}
"""


class ValkeyRateLimiter:
    """The ``rate-limit`` admission step with its buckets in Valkey."""

    def __init__(self, client: Any, settings: ValkeySettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.settings = settings
        self.guard = Guard(settings, "rate limiter 'valkey'", clock)
        self.local = TenantRateLimiter(clock)
        self._take = client.register_script(TAKE)

    def key(self, tenant: str) -> str:
        return f"{self.settings.prefix}:{{rl:{quote(tenant, safe='')}}}"

    async def __call__(self, turn: Turn) -> Callable[[Outcome | None], Any] | None:
        request, rate = turn.request, turn.config.raw.limits.rate_for(turn.request.tenant)
        if rate.requests_per_minute is None and rate.tokens_per_minute is None:
            return None
        estimate = tokens.input_tokens(request.messages, request.tools)
        args = [rate.requests_per_minute or 0, rate.tokens_per_minute or 0, estimate]
        key = self.key(request.tenant)
        try:
            answer = await self.guard.run(lambda: self._take(keys=[key], args=args), request.deadline)
        except StoreDown as down:
            if self.settings.on_unavailable == "fail_closed":
                raise down.unavailable() from down
            return self.local.take(request, turn.config.raw.limits)
        if answer[0] != 0:
            limit = (
                f"{rate.requests_per_minute} requests per minute"
                if answer[0] == 1
                else f"{rate.tokens_per_minute} tokens per minute"
            )
            wait = math.ceil(int(answer[1]) / 1000)
            raise ResourceExhausted(f"tenant {request.tenant!r} is over its rate limit of {limit}; retry in {wait} s")
        if rate.tokens_per_minute is None:
            return None

        async def settle(outcome: Outcome | None) -> None:
            if outcome is None:
                return  # a failed request keeps its reservation spent
            delta = spent_tokens(outcome) - estimate
            if delta:
                try:
                    await self.guard.run(lambda: self.client.hincrbyfloat(key, "t", -delta))
                except StoreDown:
                    pass  # the bucket refills anyway; the next request meets the limit a little late

        return settle

    async def aclose(self) -> None:
        return None
