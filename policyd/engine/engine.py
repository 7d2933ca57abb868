"""The engine: make a Turn for each request and take it through the declared pipeline.

Pure asyncio; it imports no gRPC and no YAML. What runs around the strategy (rate
limits, budgets, the decision span, the cache, retries, the ledger...) is not known
here: the daemon declares it as one :class:`~policyd.engine.pipeline.Pipeline` and
the engine runs it (``docs/architecture.md``).

A reload swaps the whole :class:`Runtime` at once; a request keeps the runtime its
Turn pinned when it started.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial

from policyd.config.model import Config
from policyd.embedding import EmbedRequest, EmbedResult
from policyd.engine.containment import Containment
from policyd.engine.context import StrategyContext
from policyd.engine.embed import Embedder, EmbedTurn
from policyd.engine.pipeline import EMPTY, Around, CallLayer, CallNext, Finish, Pipeline, Settle, TurnStep
from policyd.engine.stops import StrategyStop
from policyd.engine.turn import Observe, Runtime, Turn, TurnFinished, TurnStarted
from policyd.errors import Unavailable
from policyd.ids import new_id
from policyd.plugin.attribution import attributed, build, expect, plugin_label
from policyd.plugin.specs import DeltaSink, Progress, Provider, Registered
from policyd.types import Attempt, Explanation, ModelCall, ModelResponse, Outcome, Request, evolve

log = logging.getLogger(__name__)

RunStep = Callable[[Turn], Awaitable[Outcome]]

__all__ = ["Engine", "Runtime", "build_providers"]


def build_providers(config: Config, registered: Registered) -> dict[str, Provider]:
    providers: dict[str, Provider] = {}
    for name, inst in config.providers.items():
        spec = registered.providers[inst.kind]
        label = plugin_label(registered, "providers", inst.kind)
        providers[name] = build(label, f"provider {name!r}", spec.factory, name, inst.settings)
    return providers


def call_provider(turn: Turn, call: ModelCall, on_delta: DeltaSink | None) -> Awaitable[ModelResponse]:
    """The innermost step of every call: the provider instance the Turn's runtime built.

    Like the layers' handlers (:func:`_bind_call`), a plain function that returns the provider's
    own awaitable: no coroutine frame of its own for the call to pass through."""
    provider = turn.runtime.providers.get(call.model.provider)
    if provider is None:
        raise Unavailable(
            f"provider {call.model.provider!r} is not configured",
            reason="PROVIDER_NOT_CONFIGURED",
            metadata={"provider": call.model.provider, "model": call.model.id},
        )
    return provider.complete(call, on_delta)


class Engine:
    def __init__(
        self,
        config: Config,
        registered: Registered,
        *,
        providers: Mapping[str, Provider] | None = None,
        pipeline: Pipeline = EMPTY,
    ) -> None:
        self.registered = registered
        self.runtime = Runtime(config, providers if providers is not None else build_providers(config, registered))
        self.pipeline = pipeline
        self._in_flight: Counter[int] = Counter()
        """Requests running per runtime (by id), so a retired runtime closes only when it is idle."""
        self._idle: dict[int, asyncio.Event] = {}
        self._chain: tuple[Pipeline | None, CallNext] = (None, call_provider)
        self._contain: tuple[Runtime | None, Containment | None] = (None, None)
        self.embedder = Embedder()
        """The ``run`` step of Embed requests (the daemon gives it the cache and the retry layer)."""

    @property
    def config(self) -> Config:
        return self.runtime.config

    def swap(self, config: Config) -> Runtime:
        """Atomically replace config and providers; returns the old runtime for the caller to close."""
        old = self.runtime
        self.runtime = Runtime(config, build_providers(config, self.registered))
        return old

    async def aclose(self) -> None:
        for provider in self.runtime.providers.values():
            await provider.aclose()

    async def retire(self, old: Runtime) -> None:
        """Close ``old``'s providers once the requests that started on it have finished."""
        if self._in_flight[id(old)]:
            await self._idle.setdefault(id(old), asyncio.Event()).wait()
        for provider in old.providers.values():
            await provider.aclose()

    def _enter(self, runtime: Runtime) -> None:
        """A request starts on ``runtime`` (paired with :meth:`_leave` in a ``finally``)."""
        self._in_flight[id(runtime)] += 1

    def _leave(self, runtime: Runtime) -> None:
        key = id(runtime)
        self._in_flight[key] -= 1
        if not self._in_flight[key]:
            del self._in_flight[key]
            idle = self._idle.pop(key, None)
            if idle is not None:
                idle.set()

    # ------------------------------------------------------------ decisions

    def turn(self, request: Request, progress: Progress | None = None) -> Turn:
        """A Turn for ``request`` on the current runtime: the first thing made for every request."""
        return Turn(self.runtime, self.registered, request, progress, self.pipeline.events)

    def strategy_step(self) -> RunStep:
        """The built-in run step (transform, then the plan's strategy), for a ``run`` given to :meth:`complete`."""
        return self._run

    def explain(self, request: Request) -> Explanation:
        """The decision a request would get (what ``Explain`` answers); no step runs."""
        return self.turn(request).explanation

    # ------------------------------------------------------------ the pipeline

    async def complete(self, request: Request, progress: Progress | None = None, run: RunStep | None = None) -> Outcome:
        """``request`` through the pipeline; ``run`` replaces the built-in run step (:meth:`strategy_step`)
        for this request, admission, settlement and recording staying the same (``policyd.server.replay``)."""
        turn = self.turn(request, progress)
        events = turn.events
        runtime = turn.runtime
        self._enter(runtime)
        try:
            if events.started:
                await _notify(events.started, TurnStarted(turn))
            outcome = await self._admit(turn, self.pipeline.admit, 0, run)
        finally:
            self._leave(runtime)
        outcome = evolve(outcome, latency_ms=(time.monotonic() - turn.started) * 1000)
        if events.finished:
            await _notify(events.finished, TurnFinished(turn, outcome))
        return outcome

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """An Embed request through the same pipeline; only the ``run`` step is the embedder's."""
        turn = EmbedTurn(self.runtime, self.registered, request, self.pipeline.events)
        runtime = turn.runtime
        self._enter(runtime)
        try:
            await _notify(turn.events.started, TurnStarted(turn))
            outcome = await self._admit(turn, self.pipeline.admit, 0, self.embedder.run)
        finally:
            self._leave(runtime)
        outcome = evolve(outcome, latency_ms=(time.monotonic() - turn.started) * 1000)
        await _notify(turn.events.finished, TurnFinished(turn, outcome))
        return turn.result(outcome)

    async def _admit(self, turn: Turn, steps: tuple[TurnStep, ...], start: int, run: RunStep | None = None) -> Outcome:
        """admit → (transform → run) → settle, from ``steps[start]`` on; an Around step wraps the rest.

        An Around step that is a :class:`Finish` wraps nothing: it is kept with the settlements
        and stamps the outcome in its place as they unwind (innermost first), as its wrap would."""
        unwind: list[Settle | Finish] = []
        try:
            for i in range(start, len(steps)):
                entry = steps[i]
                if isinstance(entry, Around):
                    wrap = entry.step
                    if isinstance(wrap, Finish):
                        unwind.append(wrap)
                        continue
                    assert wrap is not None
                    outcome = await wrap(turn, partial(self._admit, turn, steps, i + 1, run))
                    break
                admission = entry.step
                assert admission is not None
                settle = await admission(turn)
                if settle is not None:
                    unwind.append(settle)
            else:
                outcome = await (run or self._run)(turn)
        except BaseException:
            if unwind:
                await _settle_failed(unwind)
            raise
        if unwind:
            outcome = await _settle(unwind, turn, outcome)
        return outcome

    async def _run(self, turn: Turn) -> Outcome:
        """transform, then run the plan's strategy over a context on the Turn."""
        contain = self._containment(turn.runtime)
        plan = turn.plan
        if plan.transforms:
            await self._transform(turn, contain)
        ctx = StrategyContext(turn, self.call_handler(), contain)
        name = plan.strategy
        spec = self.registered.strategies[name]
        label = partial(contain.label, "strategies", name)  # built only if the strategy fails
        try:
            with attributed(label, f"strategy {name!r}", traceback=True):
                result = await contain.run("strategies", name, partial(spec.run, ctx), turn.request.deadline)
        except StrategyStop as stop:
            log.info("request %s stopped: %s", turn.request.request_id, stop)
            result = ctx.outcome(stop.status)
        return self._answer(turn, expect(result, Outcome, label, f"strategy {name!r}"))

    def _containment(self, runtime: Runtime) -> Containment:
        """The plugin limits of ``runtime``'s config, built once per runtime (the latest one is kept)."""
        built_for, contain = self._contain
        if built_for is not runtime or contain is None:
            contain = Containment(self.registered, runtime.config.raw.plugins)
            self._contain = (runtime, contain)
        return contain

    async def _transform(self, turn: Turn, contain: Containment) -> None:
        for tspec, tparams in turn.plan.transforms:
            label = partial(contain.label, "transforms", tspec.name)
            request = turn.request
            with attributed(label, f"transform {tspec.name!r}", full=True):
                result = await contain.transform(tspec.name, partial(tspec.apply, request, tparams), request.deadline)
            turn.request = result.request
            turn.tokens_saved += result.tokens_saved

    def _answer(self, turn: Turn, outcome: Outcome) -> Outcome:
        """The strategy's outcome with what the Turn adds: tokens saved, a decision id, notes, redaction."""
        changes: dict[str, object] = {}
        if turn.tokens_saved:
            changes["tokens_saved"] = outcome.tokens_saved + turn.tokens_saved
        if not outcome.decision_id:
            changes["decision_id"] = new_id()
        if turn.notes:
            e = outcome.explanation
            changes["explanation"] = replace(e, warnings=(*e.warnings, *turn.notes))
        redact = self.pipeline.redact
        if redact is not None:
            redacted = _redacted(redact, outcome.attempts)
            if redacted is not None:
                changes["attempts"] = redacted
        return evolve(outcome, **changes) if changes else outcome

    # The call chain is built once per pipeline: closures made on every request showed
    # in the benchmark's profile. Layers get the Turn with every call instead.

    def call_handler(self) -> CallNext:
        pipeline = self.pipeline
        built_for, handler = self._chain
        if built_for is not pipeline:
            handler = call_provider
            for entry in reversed(pipeline.calls):
                assert entry.step is not None
                handler = _bind_call(entry.step, handler)
            self._chain = (pipeline, handler)
        return handler


def _bind_call(layer: CallLayer, inner: CallNext) -> CallNext:
    """``layer`` with its next step bound. The handler returns the layer's coroutine instead of
    awaiting it in one of its own: a coroutine and a frame less per layer and call, and one level
    less for every resumption of the call to pass through (the caller awaits it alike)."""

    def handler(turn: Turn, call: ModelCall, on_delta: DeltaSink | None) -> Awaitable[ModelResponse]:
        return layer(turn, call, on_delta, inner)

    return handler


def _redacted(redact: Callable[[Attempt], Attempt], attempts: tuple[Attempt, ...]) -> tuple[Attempt, ...] | None:
    """``attempts`` redacted, or None when redaction changed none of them (no copy is made then)."""
    changed: list[Attempt] | None = None
    for i, attempt in enumerate(attempts):
        clean = redact(attempt)
        if clean is not attempt:
            if changed is None:
                changed = list(attempts)
            changed[i] = clean
    return None if changed is None else tuple(changed)


async def _notify(observers: tuple[Observe, ...], event: object) -> None:
    """Give ``event`` to each observer; one that fails is logged, an awaitable it returns is awaited."""
    for observe in observers:
        try:
            pending = observe(event)
        except Exception:
            log.exception("observer %r failed on %s", observe, type(event).__name__)
            continue
        if pending is not None:
            await pending


async def _settle(unwind: list[Settle | Finish], turn: Turn, outcome: Outcome) -> Outcome:
    """Settle the admissions at the outcome, innermost first; the Finish steps among them stamp it in their place."""
    for step in reversed(unwind):
        if isinstance(step, Finish):
            outcome = step.finish(turn, outcome)
            continue
        pending = step(outcome)
        if pending is not None:
            await pending
    return outcome


async def _settle_failed(unwind: list[Settle | Finish]) -> None:
    """The request failed: each admission is settled with None, innermost first (a Finish has nothing to stamp)."""
    for step in reversed(unwind):
        if isinstance(step, Finish):
            continue
        pending = step(None)
        if pending is not None:
            await pending
