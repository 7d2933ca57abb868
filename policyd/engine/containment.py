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
from typing import Any, TypeVar

from policyd.config.schema import PluginsConfig, PluginTimeouts
from policyd.engine.cutoff import uncancelled
from policyd.engine.stops import OutOfTime
from policyd.errors import PluginTimeout, PolicydError
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
    """Charges a running plugin for the time it is not waiting on policyd, and stops it.

    ``ctx.call`` and ``ctx.validate`` wrap their wait in :func:`waiting`; while any
    wait is in flight (a strategy may run several calls at once) the clock stops.
    A validator run from a strategy is nested: the strategy waits while it runs.

    Between :meth:`arm` and :meth:`disarm` it is also the plugin's timeout, on one timer
    handle: set for the request's deadline (``hard``) or for the earliest moment the
    own-time limit could be reached, whichever comes first. When that timer finds the
    limit not reached yet it sets itself again; when the deadline or the limit comes,
    the plugin's task is cancelled, as ``asyncio.timeout`` would (:mod:`policyd.engine.cutoff`).
    Waits on models (``__enter__``/``__exit__``, once or more per call) touch no timer,
    unless the timer fired during the wait; rescheduling around every wait, and a
    Timeout plus a second handle per plugin run, showed in the hot path's profile.
    """

    def __init__(self, kind: str, name: str, limit_s: float | None, hard: float | None = None) -> None:
        self.kind = kind
        self.name = name
        self.limit_s = limit_s
        self.hard = hard
        """When the request's deadline stops the plugin (on the loop's clock), or None: the outermost
        plugin's one timer serves both its own-time limit and the deadline, whichever comes first."""
        self.own_armed = False
        """The timer fired for the own-time limit (not the deadline): what it means when it fires."""
        self.expiring = False
        """The deadline or the own-time limit came and the plugin's task was cancelled for it."""
        self.used_s = 0.0
        self.busy = 0
        self.cancelled_waiting = False
        """A cancellation reached it while it waited on policyd (not in its own code)."""
        self.blamed: OwnTime | None = None
        """A nested plugin (a validator) that a cancellation found running its own code."""
        self._since = time.monotonic()
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._handle: asyncio.TimerHandle | None = None
        self._for_hard = False
        """The timer is set for the deadline (else for an own-time check)."""

    def arm(self) -> None:
        """The plugin starts running in the current task: its clock and its timer start."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a plugin must run inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._since = time.monotonic()
        self._schedule(self.limit_s)

    def disarm(self, kind: type[BaseException] | None) -> bool:
        """The plugin's run is over, ending with ``kind`` (None: it returned): the timer goes.

        True when the timer stopped it: ``kind`` is the cancellation the timer made (and no
        other is pending) or a TimeoutError raised in its place."""
        handle = self._handle
        if handle is not None:
            handle.cancel()
            self._handle = None
        task, self._task = self._task, None  # over: a wait that ends later (a call left running) sets no timer
        if not self.expiring:
            return False
        alone = uncancelled(task, self._cancelling)
        return (alone and kind is asyncio.CancelledError) or (kind is not None and issubclass(kind, TimeoutError))

    def _schedule(self, own_s: float | None) -> None:
        """Set the timer for the deadline or in ``own_s`` (None: the clock is stopped), whichever comes first."""
        loop = asyncio.get_running_loop()
        hard = self.hard
        when = None if own_s is None else loop.time() + max(0.0, own_s)
        for_hard = hard is not None and (when is None or when >= hard)
        if for_hard:
            when = hard
        if when is None:
            return
        self._for_hard = for_hard
        self._handle = loop.call_at(when, self._on_time)

    def _on_time(self) -> None:
        self._handle = None
        if self._for_hard:
            self._expire()
            return
        if self.busy or self.limit_s is None:
            self._schedule(None)  # waiting on policyd: the wait's end sets the check again
            return
        left = self.limit_s - self.used_s - (time.monotonic() - self._since)
        if left > 0:
            self._schedule(left)
            return
        self.own_armed = True
        self._expire()

    def _expire(self) -> None:
        self.expiring = True
        assert self._task is not None
        self._task.cancel()

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
            if (self._handle is None or self._for_hard) and self.limit_s is not None and not self.expiring:
                self._check_again()  # the own-time check is not set

    def _check_again(self) -> None:
        """After a wait: the own-time check is set again if the timer fired during it (it is set for the deadline)."""
        if self._task is None:
            return  # a wait outside the plugin's run
        handle = self._handle
        if handle is None:
            self._schedule(self.limit_s - self.used_s)  # type: ignore[operator]
        elif self._for_hard and self.hard is not None:
            assert self.limit_s is not None
            if asyncio.get_running_loop().time() + self.limit_s - self.used_s < self.hard:
                handle.cancel()
                self._schedule(self.limit_s - self.used_s)

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
                own.arm()  # stopped by the own-time limit or the deadline
                try:
                    result = await call()
                except BaseException as exc:
                    if own.disarm(type(exc)):
                        raise self._stopped(own) from None
                    raise
                own.disarm(None)
                return result
        except asyncio.CancelledError:
            if outer is not None and outer.blamed is None:
                outer.blamed = own.blame()
            raise
        finally:
            _running.reset(token)

    def _stopped(self, own: OwnTime) -> PolicydError:
        """What stopped a plugin's run: its own-time limit, or the deadline while it (or policyd) worked."""
        if own.own_armed:
            limit_ms = (own.limit_s or 0) * 1000
            return PluginTimeout(
                self.label(own.kind, own.name),
                f"{NOUNS[own.kind]} {own.name!r} ran {limit_ms:.0f} ms of its own time without finishing "
                f"(limit: plugins.timeouts.{FIELDS[own.kind]}; time waiting on models does not count)",
            )
        hung = own.blame()
        if hung is None:
            return OutOfTime("the request's deadline expired while a model was answering")
        return PluginTimeout(
            self.label(hung.kind, hung.name),
            f"{NOUNS[hung.kind]} {hung.name!r} was still running its own code when the request's deadline came",
        )

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
