"""The grpc.aio server: servicers, health, reflection, interceptors and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from policyd.daemon import Daemon
from policyd.fleet.health import watch_fleet_stores
from policyd.server import listen as listening
from policyd.server.address import DEFAULT_GRACE_S, DEFAULT_LISTEN, DEFAULT_RELOAD_INTERVAL_S
from policyd.server.auth import AuthGate, AuthIdentity
from policyd.server.gate import Gate, add_service
from policyd.server.reflection import enable_reflection
from policyd.server.reload import Reloader
from policyd.server.servicer import PolicyServicer
from policyd.server.stats import stats_service
from policyd.telemetry.rpc import server_interceptor
from policyd.v1 import policyd_pb2, policyd_pb2_grpc

if TYPE_CHECKING:
    from policyd.server.openai.server import RunningHttp

log = logging.getLogger(__name__)

SERVICE_NAME = policyd_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health_aio.HealthServicer
    servicer: PolicyServicer
    reloader: Reloader

    async def shutdown(self, grace_s: float) -> None:
        """Health NOT_SERVING at once, refuse new RPCs, let in-flight ones finish within the grace."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


async def start_server(daemon: Daemon, listen: str = DEFAULT_LISTEN, *, serving: bool = True) -> RunningServer:
    """Start the gRPC server on ``listen``; ``serving=False`` leaves its health NOT_SERVING (a worker
    waits for its group). A worker of a group binds its address with ``SO_REUSEPORT``."""
    raw = daemon.config.raw
    limits = raw.limits
    gate = AuthGate(lambda: daemon.config)
    tracing = server_interceptor(daemon.telemetry)  # None with tracing off: no interceptor at all
    server = grpc.aio.server(
        interceptors=[tracing] if tracing is not None else None,
        options=[
            ("grpc.max_receive_message_length", limits.max_receive_message_bytes),
            ("grpc.max_send_message_length", limits.max_send_message_bytes),
            *listening.server_options(shared=daemon.group is not None),
        ],
        maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
    )
    identity = AuthIdentity(gate, lambda: daemon.config)
    servicer = PolicyServicer(
        daemon,
        identity=identity,
        stats=stats_service(daemon),
        stats_scope=identity.stats_tenant,
        report_scope=identity.report_tenant,
        operator=identity.operator,
    )
    door = Gate(gate, trace_context=tracing is None)  # auth, errors and the caller's trace context
    add_service(policyd_pb2_grpc.add_PolicyServiceServicer_to_server, servicer, server, door)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    enable_reflection((SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name), server)
    tls = raw.auth.tls if raw.auth is not None else None
    port = listening.bind(server, listen, tls, daemon.config.source)
    await server.start()
    listening.restrict_socket(listen)
    await set_serving(health, serving)
    reloader = Reloader(daemon, health)
    await reloader.start()
    await watch_fleet_stores(daemon, health)  # policyd.store.valkey / .postgres, when the file has ``fleet:``
    return RunningServer(server=server, port=port, health=health, servicer=servicer, reloader=reloader)


def _http_door() -> Callable[[Daemon, str, float], Awaitable[RunningHttp]]:
    """The HTTP front door's starter, imported only when the door is on (aiohttp costs ~0.1 s of
    start-up), and before the gRPC server listens, so that both doors still open together."""
    import_module("policyd.server.openai.app")  # the door, and aiohttp under it
    from policyd.server.openai.server import start_http

    return start_http


async def set_serving(health: health_aio.HealthServicer, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    await health.set("", status)
    await health.set(SERVICE_NAME, status)


async def serve(
    daemon: Daemon,
    listen: str = DEFAULT_LISTEN,
    grace_s: float = DEFAULT_GRACE_S,
    reload_interval_s: float = DEFAULT_RELOAD_INTERVAL_S,
    http_listen: str | None = None,
) -> None:
    """Run until SIGTERM or SIGINT, then drain and close the daemon; SIGHUP or a file change reloads.

    ``http_listen`` also serves the OpenAI-compatible front door (``policyd.server.openai``).
    """
    start_http = _http_door() if http_listen else None
    group = daemon.group
    if group is not None:
        await group.start()
    running = await start_server(daemon, listen, serving=group is None)
    http = await start_http(daemon, http_listen, grace_s) if start_http and http_listen else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if group is None:
        print(
            f"policyd listening on {listening.address(listen, running.port)} "
            f"(policy {daemon.config.source}, version {daemon.config.version})",
            flush=True,
        )
        if http is not None and http_listen is not None:
            print(f"policyd OpenAI-compatible HTTP on {listening.address(http_listen, http.port)}", flush=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[bool]] = set()

    def on_sighup() -> None:
        task = loop.create_task(running.reloader.reload("SIGHUP"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    watcher = loop.create_task(running.reloader.watch(reload_interval_s))
    if group is not None:  # the supervisor prints the group's address once every worker serves, then says so to all
        group.on_serving = lambda on: set_serving(running.health, on)
        scrape = daemon.telemetry.prometheus  # the supervisor serves every worker's metrics, merged
        metrics_port = scrape.port if scrape is not None else None
        group.ready(policy=daemon.config.source, version=daemon.config.version, metrics_port=metrics_port)
        orphaned = loop.create_task(group.gone.wait())  # the supervisor is gone: drain and exit
        orphaned.add_done_callback(lambda _: stop.set())
    await stop.wait()
    log.info("shutting down: draining for up to %.1f s", grace_s)
    watcher.cancel()
    loop.remove_signal_handler(signal.SIGHUP)
    # Both doors drain at once, within the same grace: health turns NOT_SERVING first.
    await asyncio.gather(running.shutdown(grace_s), *([http.shutdown()] if http is not None else []))
    await running.reloader.aclose()
    await daemon.aclose()
    if group is not None:
        await group.aclose()
    log.info("stopped")
