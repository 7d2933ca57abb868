"""The grpc.aio server: servicers, health, reflection, interceptors and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from policyd.daemon import Daemon
from policyd.server.errors import ErrorInterceptor
from policyd.server.servicer import PolicyServicer
from policyd.server.stats import stats_service
from policyd.telemetry.rpc import server_interceptor
from policyd.v1 import policyd_pb2, policyd_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = policyd_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name
DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_GRACE_S = 10.0


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health_aio.HealthServicer
    servicer: PolicyServicer

    async def shutdown(self, grace_s: float) -> None:
        """Health NOT_SERVING at once, refuse new RPCs, let in-flight ones finish within the grace."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


async def start_server(daemon: Daemon, listen: str = DEFAULT_LISTEN) -> RunningServer:
    server = grpc.aio.server(interceptors=[server_interceptor(daemon.telemetry), ErrorInterceptor()])
    servicer = PolicyServicer(daemon, stats=stats_service(daemon))
    policyd_pb2_grpc.add_PolicyServiceServicer_to_server(servicer, server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server=server, port=port, health=health, servicer=servicer)


async def serve(daemon: Daemon, listen: str = DEFAULT_LISTEN, grace_s: float = DEFAULT_GRACE_S) -> None:
    """Run until SIGTERM or SIGINT, then drain and close the daemon."""
    running = await start_server(daemon, listen)
    host = listen.rsplit(":", 1)[0]
    print(
        f"policyd listening on {host}:{running.port} (policy {daemon.config.source}, version {daemon.config.version})",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: draining for up to %.1f s", grace_s)
    await running.shutdown(grace_s)
    await daemon.aclose()
    log.info("stopped")
