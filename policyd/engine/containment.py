"""Keeps a plugin that raises or hangs inside the one request it was running for.

Strategies and validators are charged their **own time**: the time their code runs
or awaits something other than policyd. Time spent in ``ctx.call`` (a model call,
bounded by its own timeouts) or ``ctx.validate`` (charged to the validator) is not
theirs, so one limit suits a strategy that makes a single call and one that makes
ten. A strategy that awaits a future nobody sets, or a validator stuck on a dead
socket, is stopped after its own-time limit and the request answers with a
:class:`~policyd.errors.PluginTimeout` naming the plugin and its version, instead of
waiting for the deadline. The request's deadline bounds everything regardless.

Transforms are synchronous; they run in a small dedicated thread pool and are
charged their wall time (a thread cannot be killed: a hung transform holds its
worker, and once the pool is full later transforms time out too, still one request
at a time).

Plugin code that blocks the event loop (``time.sleep``, a CPU loop) cannot be
stopped from inside the loop; ``docs/plugins.md`` tells authors to use
``asyncio.to_thread`` for such work.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from policyd.config.schema import PluginsConfig, PluginTimeouts
from policyd.engine.stops import OutOfTime
from policyd.errors import PluginTimeout
from policyd.plugin.specs import Registered

T = TypeVar("T")

DEADLINE_GRACE_S = 0.004
"""A plugin still running this close to the deadline is stopped, leaving time to answer.

Smaller than :data:`policyd.engine.context.DEADLINE_MARGIN_S`, so a model call that
runs into the deadline ends as ``deadline-exceeded`` first, and only plugin code
that keeps running after that is named as hung.
"""

NOUNS = {"strategies": "strategy", "validators": "validator", "transforms": "transform", "providers": "provider"}
FIELDS = {
    "strategies": "strategy_ms",
    "validators": "validator_ms",
    "transforms": "transform_ms",
    "providers": "provider_ms",
}

_TRANSFORM_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="policyd-transform")


class OwnTime:
    """Charges a running plugin for the time it is not waiting on policyd.

    ``ctx.call`` and ``ctx.validate`` wrap their wait in :func:`waiting`; while any
    wait is in flight (a strategy may run several calls at once) the clock stops.
    A validator run from a strategy is nested: the strategy waits while it runs.
    """

    def __init__(self, kind: str, name: str, limit_s: float | None, hard: float | None = None) -> None:
        self.kind = kind
        self.name = name
        self.limit_s = limit_s
        self.hard = hard
        """When the request's deadline stops the plugin (on the loop's clock), or None: the outermost
        plugin's one timeout serves both its own-time limit and the deadline, whichever comes first."""
        self.own_armed = False
        """The timeout was fired for the own-time limit (not the deadline): what it means when it fires."""
        self.used_s = 0.0
        self.busy = 0
        self.cancelled_waiting = False
        """A cancellation reached it while it waited on policyd (not in its own code)."""
        self.blamed: OwnTime | None = None
        """A nested plugin (a validator) that a cancellation found running its own code."""
        self._since = time.monotonic()
        self._timeout: asyncio.Timeout | None = None
        self._check: asyncio.TimerHandle | None = None

    # The own-time limit is checked lazily: a timer set for the earliest moment the limit could be
    # reached checks the time really used when it fires, and only then fires the timeout (or sets
    # itself again). Waits on models (``__enter__``/``__exit__``, once or more per call) touch no
    # timer; rescheduling the timeout around every wait showed in the hot path's profile.

    def start(self, timeout: asyncio.Timeout) -> None:
        self._timeout = timeout
        self._since = time.monotonic()
        if self.hard is not None:
            timeout.reschedule(self.hard)
        if self.limit_s is not None:
            self._check_in(self.limit_s)

    def stop(self) -> None:
        """The plugin's run is over (its timeout is being left): the own-time timer goes."""
        check = self._check
        if check is not None:
            check.cancel()
            self._check = None

    def _check_in(self, delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        when = loop.time() + max(0.0, delay_s)
        if self.hard is not None and when >= self.hard:
            return  # the deadline comes first: the timeout set for it stops the plugin
        self._check = loop.call_at(when, self._on_check)

    def _on_check(self) -> None:
        self._check = None
        timeout = self._timeout
        if timeout is None or timeout.expired() or self.busy or self.limit_s is None:
            return  # waiting on policyd: the wait's end sets the timer again
        left = self.limit_s - self.used_s - (time.monotonic() - self._since)
        if left > 0:
            self._check_in(left)
            return
        self.own_armed = True
        timeout.reschedule(asyncio.get_running_loop().time())

    def wait(self) -> OwnTime:
        """``with own.wait():`` the clock stops for the block (the OwnTime is its own context manager:
        a generator-based one per model call showed in the hot path's profile)."""
        return self

    def __enter__(self) -> None:
        if self.busy == 0:
            self.used_s += time.monotonic() - self._since
        self.busy += 1

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is not None and issubclass(kind, asyncio.CancelledError):
            self.cancelled_waiting = True
        self.busy -= 1
        if self.busy == 0:
            self._since = time.monotonic()
            if self._check is None and self.limit_s is not None and self._timeout is not None:
                self._check_in(self.limit_s - self.used_s)  # the timer fired while it waited

    def blame(self) -> OwnTime | None:
        """Who was running its own code when a cancellation (the deadline) came: None if policyd was working.

        Asked as the cancellation unwinds, so it reads what the unwinding recorded rather
        than the busy count alone (a wait that was cancelled has already ended by then).
        """
        if self.blamed is not None:
            return self.blamed
        if self.cancelled_waiting or self.busy > 0:
            return None
        return self


_running: contextvars.ContextVar[OwnTime | None] = contextvars.ContextVar("policyd_plugin_own_time", default=None)


_NOT_TIMED = contextlib.nullcontext()


def waiting() -> contextlib.AbstractContextManager[None]:
    """``with waiting():`` stops the running plugin's own-time clock while policyd works for it."""
    own = _running.get()
    return _NOT_TIMED if own is None else own


class Containment:
    """Per-plugin limits from the policy file's ``plugins`` section, applied to one generation of config."""

    def __init__(self, registered: Registered, section: PluginsConfig | None = None) -> None:
        self.registered = registered
        self.section = section if section is not None else PluginsConfig()
        self._limits: dict[tuple[str, str], float | None] = {}
        """:meth:`limit_s` by (kind, name): the section is immutable, one Containment serves a whole config."""

    def label(self, kind: str, name: str) -> str:
        return self.registered.plugin_label(kind, name)

    def limit_s(self, kind: str, name: str) -> float | None:
        """The own-time (wall time for transforms) limit of ``name``, from its plugin's settings."""
        key = (kind, name)
        if key in self._limits:
            return self._limits[key]
        limit = self._limits[key] = self._limit_s(kind, name)
        return limit

    def _limit_s(self, kind: str, name: str) -> float | None:
        field = FIELDS[kind]
        plugin = self.registered.origins.get((kind, name), "")
        override: PluginTimeouts | None = self.section.per_plugin.get(plugin)
        source = override if override is not None and field in override.model_fields_set else self.section.timeouts
        ms: int | None = getattr(source, field)
        return None if ms is None else ms / 1000

    async def run(self, kind: str, name: str, call: Callable[[], Awaitable[T]], deadline: float | None) -> T:
        """Await a strategy's or validator's coroutine within its own-time limit.

        The outermost run (the strategy) is also bounded by the request's deadline.
        When the deadline comes while policyd is waiting on a model for the plugin,
        that is the request running out of time (:class:`OutOfTime`), not a hang.
        """
        outer = _running.get()
        hard = None
        if outer is None and deadline is not None:
            hard = asyncio.get_running_loop().time() + max(0.0, deadline - time.monotonic() - DEADLINE_GRACE_S)
        own = OwnTime(kind, name, self.limit_s(kind, name), hard)
        token = _running.set(own)
        try:
            with outer if outer is not None else _NOT_TIMED:
                async with asyncio.timeout(None) as limit:  # fired by the own-time limit or the deadline
                    own.start(limit)
                    try:
                        return await call()
                    finally:
                        own.stop()
        except asyncio.CancelledError:
            if outer is not None and outer.blamed is None:
                outer.blamed = own.blame()
            raise
        except TimeoutError:
            if not limit.expired():
                raise
            if own.own_armed:
                limit_ms = (own.limit_s or 0) * 1000
                raise PluginTimeout(
                    self.label(kind, name),
                    f"{NOUNS[kind]} {name!r} ran {limit_ms:.0f} ms of its own time without finishing "
                    f"(limit: plugins.timeouts.{FIELDS[kind]}; time waiting on models does not count)",
                ) from None
            hung = own.blame()
            if hung is None:
                raise OutOfTime("the request's deadline expired while a model was answering") from None
            raise PluginTimeout(
                self.label(hung.kind, hung.name),
                f"{NOUNS[hung.kind]} {hung.name!r} was still running its own code when the request's deadline came",
            ) from None
        finally:
            _running.reset(token)

    async def transform(self, name: str, apply: Callable[[], T], deadline: float | None) -> T:
        """Run a synchronous transform in the plugin pool within its wall-time limit and the deadline."""
        limit = self.limit_s("transforms", name)
        left = None if deadline is None else max(0.0, deadline - time.monotonic() - DEADLINE_GRACE_S)
        if limit is None and left is None:
            return apply()
        bound = min(b for b in (limit, left) if b is not None)
        future = asyncio.get_running_loop().run_in_executor(_TRANSFORM_POOL, apply)
        try:
            return await asyncio.wait_for(future, bound)
        except TimeoutError:
            raise PluginTimeout(
                self.label("transforms", name),
                f"transform {name!r} did not finish within {bound * 1000:.0f} ms"
                + ("" if bound == limit else " (the request's deadline)"),
            ) from None
