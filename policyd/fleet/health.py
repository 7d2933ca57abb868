"""Each shared store's state in grpc.health.v1, as services ``policyd.store.valkey`` and ``policyd.store.postgres``.

``policyd health --stores`` asks for them. A store that is down is NOT_SERVING (the daemon
itself keeps SERVING: what it does meanwhile is ``on_unavailable``'s choice); the reason
goes to the log when the state changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from grpc_health.v1 import health_pb2

from policyd.daemon import Daemon
from policyd.fleet.wiring import FleetParts

log = logging.getLogger(__name__)

STORE_SERVICES = ("policyd.store.valkey", "policyd.store.postgres")
INTERVAL_S = 5.0


async def watch_stores(fleet: FleetParts, health: Any, interval_s: float = INTERVAL_S) -> asyncio.Task[None] | None:
    """Set each configured store's health now and every ``interval_s``; None when there is no shared store."""
    if fleet.client is None and fleet.ledger is None:
        return None
    last: dict[str, str] = {}

    async def once() -> None:
        for store, state in (await fleet.health()).items():
            serving = state.startswith("ok")
            status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
            await health.set(f"policyd.store.{store}", status)
            if last.get(store) != state:
                (log.info if serving else log.warning)("fleet store %s: %s", store, state)
                last[store] = state

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_s)
            with contextlib.suppress(Exception):
                await once()

    await once()
    return asyncio.get_running_loop().create_task(loop(), name="policyd-fleet-health")


async def watch_fleet_stores(daemon: Daemon, health: Any) -> None:
    """Start :func:`watch_stores` for a daemon; its shutdown stops the watcher."""
    task = await watch_stores(daemon.fleet, health)
    if task is None:
        return

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    daemon.closers.append(stop)
