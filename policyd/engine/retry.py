"""The one owner of retries: a call layer with a retry budget, jittered backoff and circuit breakers.

Providers never retry; they raise :class:`~policyd.errors.UpstreamError` with
``retryable`` set. This layer, innermost around every model call, decides:

* **retry** a retryable failure up to ``max_attempts`` upstream requests, waiting a
  full-jitter exponential backoff, at least the upstream's Retry-After, and never past
  the call's remaining time; never once text has been streamed to the caller;
* **budget**: calls retrying at once stay within ``budget_ratio`` of the calls in
  flight (at least ``min_retries``), so a failing upstream sees at most ~20% extra
  load instead of a retry storm;
* **circuit breaker** per provider instance: ``failures`` consecutive retryable
  failures open it; while open, calls fail at once (a strategy moves to its next
  model); after ``open_s`` (or the Retry-After, if longer) one probe call goes through
  and its result closes or re-opens the circuit.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from policyd.config.retries import RetriesConfig
from policyd.engine.pipeline import CallNext
from policyd.engine.turn import Turn
from policyd.errors import UpstreamError
from policyd.plugin.specs import DeltaSink
from policyd.types import ModelCall, ModelResponse, evolve

MIN_ATTEMPT_S = 0.05
"""A retry is not started with less time than this left for it."""


@dataclass
class Breaker:
    """One provider instance's circuit: closed, open until ``open_until``, or half-open with one probe."""

    failures: int = 0
    open_until: float = 0.0
    probing: bool = False

    def is_open(self, threshold: int) -> bool:
        return self.failures >= threshold


class CircuitOpen(UpstreamError):
    """Refused without calling the upstream; not retryable, so a strategy moves on at once."""


class RetryLayer:
    def __init__(
        self,
        settings: Callable[[], RetriesConfig] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.rand = rand
        self.in_flight = 0
        self.retrying = 0
        self.breakers: dict[str, Breaker] = {}
        self.upstream_requests = 0
        """Requests sent through this layer, retries included (for stats and tests)."""

    # ------------------------------------------------------------ the layer

    async def __call__(self, turn: Turn, call: ModelCall, on_delta: DeltaSink | None, inner: CallNext) -> ModelResponse:
        """The ``retry`` call layer; its settings are the Turn's ``retries:`` section (or fixed ones, in tests)."""
        cfg = self._settings(turn)
        provider = call.model.provider
        circuit = provider if cfg.breaker.scope == "provider" else f"{provider}/{call.model.upstream}"
        breaker = self.breakers.get(circuit)
        if breaker is None:
            breaker = self.breakers[circuit] = Breaker()
        deadline = None if call.timeout_s is None else self.clock() + call.timeout_s
        streamed = False

        sink: DeltaSink | None = None
        if on_delta is not None:  # a closure only where a stream needs one

            def relay(text: str) -> None:
                nonlocal streamed
                streamed = streamed or bool(text)
                assert on_delta is not None
                on_delta(text)

            sink = relay

        self.in_flight += 1
        holding = False
        attempt = 0
        try:
            while True:
                attempt += 1
                probe = self.admit(breaker, provider, cfg)
                self.upstream_requests += 1
                try:
                    response = await inner(turn, self._timed(call, attempt, deadline), sink)
                except UpstreamError as exc:
                    delay = self.after_failure(exc, breaker, cfg, attempt, probe, streamed, holding, deadline)
                    if not holding:
                        holding = True
                        self.retrying += 1
                    await self.sleep(delay)
                    continue
                except BaseException:
                    if probe:
                        breaker.probing = False  # cancelled or a bug: let another call probe
                    raise
                breaker.failures, breaker.probing = 0, False
                return response
        finally:
            self.in_flight -= 1
            if holding:
                self.retrying -= 1

    def _timed(self, call: ModelCall, attempt: int, deadline: float | None) -> ModelCall:
        """The call with what is left of its timeout; the first attempt's is the call's own (no copy)."""
        if attempt == 1 or deadline is None:
            return call
        return evolve(call, timeout_s=max(0.0, deadline - self.clock()))

    # ------------------------------------------------------------ decisions

    def _settings(self, turn: Turn) -> RetriesConfig:
        return self.settings() if self.settings is not None else turn.config.raw.retries

    def after_failure(
        self,
        exc: UpstreamError,
        breaker: Breaker,
        cfg: RetriesConfig,
        attempt: int,
        probe: bool,
        streamed: bool,
        holding: bool,
        deadline: float | None,
    ) -> float:
        """After a failed upstream request: the delay before the next try, or ``exc`` annotated with why not.

        One rule for every caller of an upstream (completions here, embedding batches in
        :mod:`policyd.engine.embed_calls`): the breaker counts the failure first.
        """
        self._failed(breaker, exc, cfg, probe)
        why_not = self._why_not(exc, attempt, streamed, holding, cfg)
        if why_not is None and breaker.is_open(cfg.breaker.failures):
            why_not = "the circuit opened"  # this caller sees its own upstream error, not "circuit open"
        delay = self._delay(exc, attempt, cfg) if why_not is None else 0.0
        if why_not is None and deadline is not None and self.clock() + delay + MIN_ATTEMPT_S > deadline:
            why_not = f"a retry in {delay:.2f} s would not finish before the deadline"
        if why_not is not None:
            raise _annotated(exc, attempt, why_not) from exc
        return delay

    def admit(self, breaker: Breaker, provider: str, cfg: RetriesConfig) -> bool:
        """Raises CircuitOpen when the circuit refuses the call; True when this call is the half-open probe."""
        if not breaker.is_open(cfg.breaker.failures):
            return False
        now = self.clock()
        if now < breaker.open_until or breaker.probing:
            wait = max(breaker.open_until - now, 0.0)
            raise CircuitOpen(
                provider,
                f"circuit open after {breaker.failures} consecutive failures"
                + (f"; next probe in {wait:.1f} s" if wait else "; a probe call is in flight"),
                retryable=False,
                retry_after_s=wait or None,
            )
        breaker.probing = True
        return True

    def _failed(self, breaker: Breaker, exc: UpstreamError, cfg: RetriesConfig, probe: bool) -> None:
        if probe:
            breaker.probing = False
        if not exc.retryable:
            breaker.failures = 0  # the upstream answered; the request itself was at fault
            return
        breaker.failures += 1
        if breaker.is_open(cfg.breaker.failures):
            hold = max(cfg.breaker.open_s, exc.retry_after_s or 0.0)
            breaker.open_until = max(breaker.open_until, self.clock() + hold)

    def _why_not(
        self, exc: UpstreamError, attempt: int, streamed: bool, holding: bool, cfg: RetriesConfig
    ) -> str | None:
        """Why this failure is not retried, or None to retry it."""
        if not exc.retryable:
            return "not retryable"
        if streamed:
            return "text was already streamed"
        if attempt >= cfg.max_attempts:
            return f"{cfg.max_attempts} attempts made"
        if not holding and self.retrying >= max(cfg.min_retries, cfg.budget_ratio * self.in_flight):
            return "retry budget exhausted"
        return None

    def _delay(self, exc: UpstreamError, attempt: int, cfg: RetriesConfig) -> float:
        ceiling = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (attempt - 1))
        delay = self.rand() * ceiling
        if exc.retry_after_s is not None:
            delay = max(delay, exc.retry_after_s)
        return delay


def _annotated(exc: UpstreamError, attempts: int, why_not: str) -> UpstreamError:
    """The same error, saying how many attempts were made and why there are no more."""
    if attempts == 1 and why_not == "not retryable":
        return exc
    return type(exc)(
        exc.provider,
        f"{exc.message} (after {attempts} attempt{'s' if attempts > 1 else ''}; {why_not})",
        retryable=exc.retryable,
        status=exc.status,
        retry_after_s=exc.retry_after_s,
        detail=exc.detail,
    )
