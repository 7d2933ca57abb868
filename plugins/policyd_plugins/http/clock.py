"""The clocks of a transport's requests: a total and a phase deadline each, one timer for all.

Every request runs under two clocks: the **total** (the instance's ``total_s`` cut to the
call's remaining time) and a **phase** clock: ``first_byte_s`` until the first byte of the
body arrives, then ``between_chunks_s`` between reads. When one runs out, the request's task
is cancelled, and :meth:`Clock.stop` tells the caller that the ``CancelledError`` it caught
is a timeout (``phase`` says which clock ran out; ``None``: the total).

The clocks of one transport share one timer (:class:`Watch`), armed at the earliest deadline
it knows of. Starting or stopping a clock is a dict insert or pop: a timer is re-armed only
when a new deadline comes before the armed one, which requests started in turn with the same
timeouts never do; a timer that finds nothing due re-arms itself for the earliest deadline
left. A ``call_at`` and a ``cancel`` a request cost ~1.4 µs on uvloop; a deadline is still
met to the timer's precision, as before.
"""

from __future__ import annotations

import asyncio
import math

_FIRST_BYTE, _STALLED = "first byte", "stalled"
"""``phase`` before and while the body is arriving (its message is made only when the clock runs out)."""


class Watch:
    """The clocks running on one event loop for one transport, and the one timer over them."""

    __slots__ = ("_at", "_handle", "clocks", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clocks: dict[Clock, None] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._at = math.inf

    def due_by(self, when: float) -> None:
        """A running clock's deadline is now ``when``: the timer fires by then."""
        if when < self._at:
            if self._handle is not None:
                self._handle.cancel()
            self._at = when
            self._handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle, self._at = None, math.inf
        now = self.loop.time()
        earliest = math.inf
        for clock in list(self.clocks):
            due = min(clock.total_at, clock.phase_at)
            if due <= now:
                del self.clocks[clock]
                clock.expire(now)
            elif due < earliest:
                earliest = due
        if earliest < math.inf:
            self.due_by(earliest)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._at = None, math.inf
        self.clocks.clear()


class Clock:
    """One request's total and phase clocks: ``start()`` right before the awaited request,
    ``stop()`` once it returned or raised (plain calls: no ``async with`` and its two coroutines)."""

    __slots__ = (
        "_cancelling",
        "_task",
        "_watch",
        "between_s",
        "fired",
        "first_byte_s",
        "phase",
        "phase_at",
        "total_at",
        "total_s",
    )

    def __init__(self, watch: Watch, total_s: float, first_byte_s: float, between_s: float) -> None:
        self._watch = watch
        now = watch.loop.time()
        self.total_s = total_s
        self.total_at = now + total_s
        self.phase_at = now + first_byte_s
        self.first_byte_s = first_byte_s
        self.between_s = between_s
        self.phase: str | None = _FIRST_BYTE
        self.fired = False

    def start(self) -> None:
        """Run the clocks for the task running now."""
        watch = self._watch
        task = asyncio.current_task(watch.loop)
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()
        watch.clocks[self] = None
        watch.due_by(min(self.total_at, self.phase_at))

    def stop(self) -> bool:
        """Stop the clocks; True when one ran out (the task's cancellation was the clock's: it is
        taken back, and a ``CancelledError`` caught with it means a timeout, not a cancel)."""
        self._watch.clocks.pop(self, None)
        return self.fired and self._task.uncancel() <= self._cancelling

    def got_bytes(self) -> None:
        """Bytes of the body arrived: the phase clock restarts at ``between_s``."""
        if self.phase is not _STALLED:
            self.phase = _STALLED
        self.phase_at = at = self._watch.loop.time() + self.between_s
        self._watch.due_by(at)

    def expire(self, now: float) -> None:
        """Called by the watch once a deadline passed: name the clock and cancel the task."""
        if self.total_at <= now:
            self.phase = None
        elif self.phase is _STALLED:
            self.phase = f"stalled for {self.between_s:g} s between chunks"
        else:
            self.phase = f"no response within {self.first_byte_s:g} s"
        self.fired = True
        self._task.cancel()
