"""Start and stop the HTTP front door beside the gRPC server (``--http-listen`` / ``http_listen``).

aiohttp's low-level :class:`aiohttp.web.Server` (no router, no middlewares, no access
log) runs on the daemon's event loop, uvloop when installed, with a lean path in front
of it for whole-JSON chat completions (``fast.py``); ``docs/openai.md`` has the
measurements that chose them. With ``auth.tls`` the port speaks TLS too, and with
``auth.tls.client_ca_file`` it requires client certificates, as the gRPC port does.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from policyd.config.security import TlsConfig
from policyd.daemon import Daemon
from policyd.errors import ConfigError
from policyd.server.auth import AuthGate
from policyd.server.listen import check_address, unix_path

if TYPE_CHECKING:  # aiohttp loads only when the HTTP door opens (docs/deploy.md, "Start-up")
    from aiohttp import web

    from policyd.server.openai.app import FrontDoor

ENV = "POLICYD_HTTP_LISTEN"


@dataclass
class RunningHttp:
    runner: web.BaseRunner
    site: web.BaseSite
    door: FrontDoor
    port: int

    async def shutdown(self) -> None:
        """Refuse new connections, let in-flight requests finish within the runner's grace, close."""
        await self.runner.cleanup()


def ssl_context(tls: TlsConfig, source: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file:
            ctx.load_verify_locations(tls.client_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(source, "auth.tls", f"cannot load the TLS files: {exc}") from None
    return ctx


def http_listen_option(flag: str | None, daemon: Daemon) -> str | None:
    """The address to serve HTTP on: the flag (or ``$POLICYD_HTTP_LISTEN``), else the policy file's key."""
    if flag:
        return flag
    return daemon.config.raw.http_listen


async def start_http(daemon: Daemon, listen: str, grace_s: float = 10.0) -> RunningHttp:
    from aiohttp import web

    from policyd.server.openai.app import FrontDoor
    from policyd.server.openai.fast import DoorServer

    try:
        check_address(listen)
    except ValueError as exc:
        raise ConfigError(daemon.config.source, "http_listen", str(exc)) from None
    auth = daemon.config.raw.auth
    tls = auth.tls if auth is not None else None
    door = FrontDoor(daemon, AuthGate(lambda: daemon.config))
    server = DoorServer(door, handler_cancellation=True, access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=grace_s)
    await runner.setup()
    context = ssl_context(tls, daemon.config.source) if tls is not None else None
    path = unix_path(listen)
    site: web.BaseSite
    if path is not None:
        site = web.UnixSite(runner, path, ssl_context=context)
    else:
        host, _, port = listen.rpartition(":")
        site = web.TCPSite(
            runner, host.strip("[]") or None, int(port), ssl_context=context, reuse_port=daemon.group is not None
        )
    await site.start()
    bound = 0
    if path is None:
        server_obj = getattr(site, "_server", None)
        sockets = server_obj.sockets if server_obj is not None else []
        bound = sockets[0].getsockname()[1] if sockets else int(listen.rpartition(":")[2])
    return RunningHttp(runner=runner, site=site, door=door, port=bound)
