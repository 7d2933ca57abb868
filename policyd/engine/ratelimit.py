"""Per-tenant rate limits: requests and tokens per minute, as token buckets.

An admission step of the pipeline (``rate-limit``). Each tenant has up to two buckets holding one minute's worth and
refilling continuously. A request takes one request token and reserves its
estimated input tokens; when it finishes, the tokens its upstream calls really used
(cache hits are free) are settled, so the bucket may go below zero and the next
requests wait for the refill. A refused request costs nothing and says how long to
wait. Limits come from the Turn's configuration, so a reload applies from the next request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from policyd.config.security import LimitsConfig, RateConfig
from policyd.engine import tokens
from policyd.engine.turn import Turn
from policyd.errors import ResourceExhausted
from policyd.types import Outcome, Request


@dataclass
class TokenBucket:
    per_minute: int
    level: float
    updated: float

    @classmethod
    def full(cls, per_minute: int, now: float) -> TokenBucket:
        return cls(per_minute, float(per_minute), now)

    def refill(self, now: float) -> None:
        self.level = min(float(self.per_minute), self.level + (now - self.updated) * self.per_minute / 60.0)
        self.updated = now

    def wait_s(self, amount: float) -> float:
        """Seconds until ``amount`` is available (0 if it is now)."""
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing * 60.0 / self.per_minute


def spent_tokens(outcome: Outcome) -> int:
    """Tokens the request's upstream calls used; answers from the cache cost none."""
    return sum(a.input_tokens + a.output_tokens for a in outcome.attempts if not a.cached)


class TenantRateLimiter:
    """The ``rate-limit`` admission step: limits come from the Turn's pinned config."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def _bucket(self, tenant: str, kind: str, per_minute: int | None, now: float) -> TokenBucket | None:
        if per_minute is None:
            self._buckets.pop((tenant, kind), None)
            return None
        bucket = self._buckets.get((tenant, kind))
        if bucket is None or bucket.per_minute != per_minute:
            bucket = self._buckets[(tenant, kind)] = TokenBucket.full(per_minute, now)
        bucket.refill(now)
        return bucket

    def admit(self, request: Request, limits: LimitsConfig) -> tuple[TokenBucket | None, int]:
        """Take the request's share or raise RESOURCE_EXHAUSTED; returns the token bucket and the reservation."""
        rate: RateConfig = limits.rate_for(request.tenant)
        estimate = tokens.input_tokens(request.messages, request.tools)
        return self.draw(request.tenant, rate.requests_per_minute, rate.tokens_per_minute, estimate), estimate

    def draw(
        self, tenant: str, requests_per_minute: int | None, tokens_per_minute: int | None, estimate: int
    ) -> TokenBucket | None:
        """Take one request and ``estimate`` tokens from ``tenant``'s buckets or raise RESOURCE_EXHAUSTED;
        returns the token bucket (None without a token limit). A group of workers draws here, in its supervisor."""
        now = self._clock()
        requests = self._bucket(tenant, "requests", requests_per_minute, now)
        toks = self._bucket(tenant, "tokens", tokens_per_minute, now)
        if requests is not None and requests.level < 1:
            raise refused(tenant, f"{requests.per_minute} requests per minute", requests.wait_s(1))
        if toks is not None:
            need = min(estimate, toks.per_minute)  # a request larger than a minute's worth waits for a full bucket
            if toks.level < need or toks.level <= 0:
                raise refused(tenant, f"{toks.per_minute} tokens per minute", toks.wait_s(max(need, 1)))
            toks.level -= estimate
        if requests is not None:
            requests.level -= 1
        return toks

    def adjust(self, tenant: str, used_more: float) -> None:
        """Settle ``tenant``'s tokens: ``used_more`` than reserved leaves the bucket (negative: given back)."""
        bucket = self._buckets.get((tenant, "tokens"))
        if bucket is not None:
            bucket.level -= used_more

    def take(self, request: Request, limits: LimitsConfig) -> Callable[[Outcome | None], None] | None:
        """Admit ``request``; returns how to settle its tokens at the real usage (None: nothing to settle)."""
        rate: RateConfig = limits.rate_for(request.tenant)
        if rate.requests_per_minute is None and rate.tokens_per_minute is None:
            if self._buckets:  # limits a reload removed: their buckets go, as ``_bucket`` drops them
                self._buckets.pop((request.tenant, "requests"), None)
                self._buckets.pop((request.tenant, "tokens"), None)
            return None  # no limit: nothing to draw or settle
        bucket, reserved = self.admit(request, limits)
        if bucket is None:
            return None

        def settle(outcome: Outcome | None) -> None:
            if outcome is not None:  # a failed request keeps its reservation spent
                bucket.level -= spent_tokens(outcome) - reserved

        return settle

    async def __call__(self, turn: Turn) -> Callable[[Outcome | None], None] | None:
        return self.take(turn.request, turn.config.raw.limits)


def refused(tenant: str, limit: str, wait_s: float) -> ResourceExhausted:
    """RATE_LIMITED with a RetryInfo of the time until the bucket holds the request's share."""
    return ResourceExhausted(
        f"tenant {tenant!r} is over its rate limit of {limit}; retry in {math.ceil(wait_s)} s",
        reason="RATE_LIMITED",
        metadata={"tenant": tenant, "limit": limit},
        retry_after_s=wait_s,
    )
