"""The Turn: one request's decision and everything that happens to it, in one object.

The engine creates a Turn first, before any pipeline step runs. It pins the runtime
(config, registry, providers) the request started on, so a reload in the middle of a
request never mixes two configurations, and it decides once: the policy match, the
plan, the explanation and the cost cap are computed on first use and then only read.
Every step of the pipeline (admission, transforms, the strategy, settlement,
recording) reads the Turn instead of re-deriving the decision from the live config.

The events observers see (:class:`TurnStarted`, :class:`AttemptRecorded`,
:class:`TurnFinished`) are defined here too; ``docs/architecture.md`` shows the whole
way of a request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from policyd.config.model import Config, Plan
from policyd.engine.explain import ExplanationMemo
from policyd.engine.plan_match import Match, MatchMemo, match_request
from policyd.plugin.specs import Progress, Provider, Registered
from policyd.types import Attempt, Explanation, ModelCall, Outcome, Request


@dataclass(frozen=True)
class Runtime:
    """One consistent generation of configuration and the providers built from it."""

    config: Config
    providers: Mapping[str, Provider]
    matches: MatchMemo = field(init=False, repr=False, compare=False)
    """The policy matches decided on this config (a reload's new Runtime starts with none)."""
    explanations: ExplanationMemo = field(init=False, repr=False, compare=False)
    """The explanations reusable on this config (strategies registered ``estimates_only``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "matches", MatchMemo(self.config))
        object.__setattr__(self, "explanations", ExplanationMemo(self.config))


# ---------------------------------------------------------------- events


@dataclass(slots=True)
class TurnStarted:
    """The engine has a Turn and is about to admit it."""

    turn: Turn


@dataclass(slots=True)
class AttemptRecorded:
    """The strategy context recorded an attempt (and again, same index, when its verdict is known).

    ``call`` is the model call behind the attempt (the very object the call layers
    received), or None when no call was made (an excluded model, a free validator).
    """

    turn: Turn
    attempt: Attempt
    call: ModelCall | None


@dataclass(slots=True)
class TurnFinished:
    """The answer is built: settled, latency stamped; observers record it."""

    turn: Turn
    outcome: Outcome


TurnEvent = TurnStarted | AttemptRecorded | TurnFinished

Observe = Callable[[Any], "Awaitable[None] | None"]
"""An observer's handler for one kind of event; an awaitable it returns is awaited."""


class Events:
    """Observers by event type, and the redaction applied to attempts before anyone sees them."""

    def __init__(
        self,
        handlers: Mapping[type, tuple[Observe, ...]] | None = None,
        redact: Callable[[Attempt], Attempt] | None = None,
    ) -> None:
        self.started: tuple[Observe, ...] = tuple((handlers or {}).get(TurnStarted, ()))
        self.attempts: tuple[Observe, ...] = tuple((handlers or {}).get(AttemptRecorded, ()))
        self.finished: tuple[Observe, ...] = tuple((handlers or {}).get(TurnFinished, ()))
        self.redact = redact


NO_EVENTS = Events()


# ---------------------------------------------------------------- the turn


def cost_cap(config: Config, request: Request, match: Match) -> float:
    """The request's cost cap: the tighter of the request's and the plan's, else the default."""
    limits = [c for c in (request.constraints.max_cost_usd, match.plan.max_cost_usd) if c is not None]
    return min(limits) if limits else config.defaults.max_cost_usd


class Turn:
    """One request on its way through the pipeline.

    ``received`` is the request as the caller sent it; ``request`` is what the strategy
    runs on (after a budget downgrade and the plan's transforms). ``match``,
    ``explanation`` and ``max_cost_usd`` are decided on first use, once.
    """

    def __init__(
        self,
        runtime: Runtime,
        registered: Registered,
        request: Request,
        progress: Progress | None = None,
        events: Events = NO_EVENTS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.registered = registered
        self.received = request
        self.request = request
        self.progress = progress
        self.events = events
        self.started = clock()
        self.reserved_usd: float | None = None
        """What an admission step reserved for this request (a budget); the cost cap is lowered to it."""
        self.attempts: list[Attempt] = []
        self.tokens_saved = 0
        self.notes: list[str] = []
        """Warnings the answer's explanation gains (e.g. a budget downgrade)."""
        self.state: dict[object, Any] = {}
        """Per-turn state of pipeline steps, keyed by the step (e.g. the trace layer's open spans)."""
        self._match: Match | None = None
        self._explanation: Explanation | None = None
        self._max_cost_usd: float | None = None

    # ------------------------------------------------------------ the decision (once)

    @property
    def config(self) -> Config:
        return self.runtime.config

    @property
    def match(self) -> Match:
        match = self._match
        if match is None:
            match = self._match = self.runtime.matches.match(self.request, match_request)
        return match

    @property
    def explanation(self) -> Explanation:
        explanation = self._explanation
        if explanation is None:
            explanation = self._explanation = self.runtime.explanations.explain(
                self.registered, self.request, self.match
            )
        return explanation

    @property
    def max_cost_usd(self) -> float:
        cap = self._max_cost_usd
        if cap is None:
            cap = self._max_cost_usd = cost_cap(self.runtime.config, self.request, self.match)
        return cap

    @property
    def plan(self) -> Plan:
        return self.match.plan

    def redecide(self, policy: str) -> None:
        """Decide again on another policy (a budget downgrade): the only second decision a Turn makes."""
        self.request = replace(self.request, policy=policy)
        self._match = self._explanation = self._max_cost_usd = None

    def hold(self, usd: float) -> None:
        """Record a reservation of ``usd`` and lower the cost cap to it: the strategy cannot spend more."""
        self.reserved_usd = usd
        self._max_cost_usd = usd

    # ------------------------------------------------------------ attempts

    def record(self, attempt: Attempt, call: ModelCall | None = None, *, stream: bool = True) -> None:
        """Publish an attempt (new, or an update of the same index) to observers and the caller's progress.

        ``stream=False`` holds it back from the caller's progress (a validator's call, streamed
        once with its verdict through :meth:`stream`).
        """
        events = self.events
        progress = self.progress
        on_attempt = progress.on_attempt if progress is not None and stream else None
        if not events.attempts and on_attempt is None:
            return  # nobody is watching (the outcome's attempts are redacted when it is built)
        if events.redact is not None:
            attempt = events.redact(attempt)
        if events.attempts:
            event = AttemptRecorded(self, attempt, call)
            for observe in events.attempts:
                observe(event)
        if on_attempt is not None:
            on_attempt(attempt)

    def stream(self, attempt: Attempt) -> None:
        """Send an attempt to the caller's progress only (observers have seen it already)."""
        progress = self.progress
        if progress is None or progress.on_attempt is None:
            return
        redact = self.events.redact
        progress.on_attempt(redact(attempt) if redact is not None else attempt)
