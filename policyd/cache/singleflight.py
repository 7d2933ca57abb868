"""Single-flight: identical concurrent calls share one upstream call.

The first caller of a key (the leader) starts the call as a task of its own; later
callers of the same key (followers) wait for that task, each within its own
deadline: a caller that gives up (its request's deadline, a cancelled RPC) leaves
the others waiting, and the call is cancelled only when nobody waits for it any
more. The leader's stream sink receives the text as it arrives until the leader
leaves; followers get the whole answer at the end. An exception of the call is
every waiter's exception.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from policyd.plugin.specs import DeltaSink

T = TypeVar("T")


@dataclass
class _Flight(Generic[T]):
    task: asyncio.Task[T] | None = None
    waiters: int = 0
    sink: DeltaSink | None = None


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._flights: dict[str, _Flight[T]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(
        self, key: str, fn: Callable[[DeltaSink | None], Awaitable[T]], on_delta: DeltaSink | None
    ) -> tuple[T, bool]:
        """Run ``fn`` once per key at a time; returns its result and whether it was shared."""
        flight = self._flights.get(key)
        shared = flight is not None
        if flight is None:
            flight = _Flight(sink=on_delta)
            relay = self._relay(flight) if on_delta is not None else None
            flight.task = asyncio.ensure_future(fn(relay))
            self._flights[key] = flight
            flight.task.add_done_callback(functools.partial(self._done, key, flight))
        assert flight.task is not None
        flight.waiters += 1
        try:
            result = await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            self._leave(flight, on_delta)
            raise
        flight.waiters -= 1
        return result, shared

    @staticmethod
    def _relay(flight: _Flight[T]) -> DeltaSink:
        def relay(text: str) -> None:
            sink = flight.sink
            if sink is not None:
                sink(text)

        return relay

    @staticmethod
    def _leave(flight: _Flight[T], on_delta: DeltaSink | None) -> None:
        flight.waiters -= 1
        if on_delta is not None and flight.sink is on_delta:
            flight.sink = None
        if flight.waiters <= 0 and flight.task is not None and not flight.task.done():
            flight.task.cancel()

    def _done(self, key: str, flight: _Flight[T], task: asyncio.Task[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is never logged as lost
