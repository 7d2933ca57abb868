"""Which asyncio event loop ``policyd serve`` runs on: uvloop when installed, else asyncio's.

uvloop's transports, callbacks and timers are implemented in C: on this project's
benchmark (``docs/benchmarks.md``) the bare grpc.aio echo server spends about 12% less
CPU per request on it, and the daemon's HTTP calls to providers gain as much.
``POLICYD_EVENT_LOOP=asyncio`` keeps the standard loop (to rule uvloop out when
debugging); ``uvloop`` insists on it and fails when it is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from policyd.errors import PolicydError

if TYPE_CHECKING:  # asyncio loads when a loop runs: a group's supervisor starts its workers first
    import asyncio

ENV = "POLICYD_EVENT_LOOP"
CHOICES = ("auto", "uvloop", "asyncio")
LoopFactory = Callable[[], "asyncio.AbstractEventLoop"]


def checked_choice(choice: str | None = None) -> str:
    """``choice`` (default ``$POLICYD_EVENT_LOOP``, else auto), refused when unknown or when it insists on
    a missing uvloop; imports nothing (the supervisor of a group checks it for its workers)."""
    choice = (choice or os.environ.get(ENV) or "auto").strip().lower()
    if choice not in CHOICES:
        raise PolicydError(f"{ENV} must be one of {', '.join(CHOICES)} (got {choice!r})")
    if choice == "uvloop":
        from importlib.util import find_spec

        if find_spec("uvloop") is None:
            raise PolicydError(f"{ENV}=uvloop but uvloop is not installed (pip install uvloop)")
    return choice


def loop_factory(choice: str | None = None) -> tuple[str, LoopFactory | None]:
    """(name, factory) for ``choice`` (default ``$POLICYD_EVENT_LOOP``, else auto); factory None: asyncio's."""
    choice = checked_choice(choice)
    if choice == "asyncio":
        return "asyncio", None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise PolicydError(f"{ENV}=uvloop but uvloop is not installed (pip install uvloop)") from None
        return "asyncio", None
    return "uvloop", uvloop.new_event_loop


def run(main: Coroutine[Any, Any, None], factory: LoopFactory | None) -> None:
    """``asyncio.run(main)`` on the loop ``factory`` makes (None: asyncio's)."""
    import asyncio

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)
