"""``asyncio.timeout`` for the hot path: the same semantics on one timer handle, as a plain ``with``.

Every model call runs inside one (its timeout), and ``asyncio.timeout``'s Timeout (an
async context manager with a state machine, ~5 µs a use on uvloop) showed in the
profile of a request. :class:`Cutoff` keeps its contract: the task is cancelled when
the time comes, and the block raises :class:`TimeoutError` in place of that
cancellation, unless another cancellation is pending too (``Task.uncancel``).
"""

from __future__ import annotations

from asyncio import CancelledError, Task, TimerHandle, current_task, get_running_loop
from types import TracebackType
from typing import Any


class Cutoff:
    """``with Cutoff(delay_s):`` is ``async with asyncio.timeout(delay_s):`` (None: no limit)."""

    __slots__ = ("_cancelling", "_delay_s", "_handle", "_task", "expiring")

    def __init__(self, delay_s: float | None) -> None:
        self._delay_s = delay_s
        self._handle: TimerHandle | None = None
        self._task: Task[Any] | None = None
        self._cancelling = 0
        self.expiring = False
        """The time came and the task was cancelled for it."""

    def __enter__(self) -> Cutoff:
        delay_s = self._delay_s
        if delay_s is not None:
            task = current_task()
            if task is None:
                raise RuntimeError("Cutoff should be used inside a task")
            self._task = task
            self._cancelling = task.cancelling()
            loop = get_running_loop()
            self._handle = loop.call_at(loop.time() + delay_s, self._fire)
        return self

    def _fire(self) -> None:
        self._handle = None
        self.expiring = True
        assert self._task is not None
        self._task.cancel()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        handle = self._handle
        if handle is not None:
            handle.cancel()
            self._handle = None
        if self.expiring and uncancelled(self._task, self._cancelling) and kind is CancelledError:
            raise TimeoutError from exc


def uncancelled(task: Task[Any] | None, before: int) -> bool:
    """Withdraw the cancellation a cutoff made; True when no other one is pending (``before``: the count at entry)."""
    assert task is not None
    return task.uncancel() <= before
