"""Where the server listens: TCP (``HOST:PORT``) or a Unix socket (``unix:///path``), plain or TLS.

With ``auth.tls`` the port speaks TLS; with ``auth.tls.client_ca_file`` every client
must also present a certificate signed by that CA (mTLS), whose common name can name
the tenant. A Unix socket is made readable and writable by its owner and group only:
who may connect is then a matter of file permissions.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import grpc.aio

from policyd.config.security import TlsConfig
from policyd.errors import ConfigError
from policyd.server.address import UNIX_PREFIX, check_address, unix_path

__all__ = ["UNIX_PREFIX", "address", "bind", "check_address", "restrict_socket", "server_options", "unix_path"]

SOCKET_MODE = 0o660
SERVER_OPTIONS = [("grpc.so_reuseport", 0)]
"""grpc enables SO_REUSEPORT by default: a second daemon on a busy port would bind and share it."""


def server_options(*, shared: bool) -> list[tuple[str, int]]:
    """One daemon binds its port alone; a worker of ``--workers N`` shares the port its supervisor holds."""
    return [("grpc.so_reuseport", 1)] if shared else SERVER_OPTIONS


def _read(source: str, key: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(source, key, f"cannot read {path}: {exc.strerror or exc}") from None


def server_credentials(tls: TlsConfig, source: str) -> grpc.ServerCredentials:
    key = _read(source, "auth.tls.key_file", tls.key_file)
    cert = _read(source, "auth.tls.cert_file", tls.cert_file)
    ca = _read(source, "auth.tls.client_ca_file", tls.client_ca_file) if tls.client_ca_file else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


def bind(server: grpc.aio.Server, listen: str, tls: TlsConfig | None, source: str) -> int:
    """Add the listening port; returns the TCP port (for a Unix socket, grpc's non-zero marker).

    The server is created without SO_REUSEPORT (see ``SERVER_OPTIONS``), so a port another
    process holds is an error here instead of two daemons silently sharing the traffic; a
    worker of a group shares the port its supervisor holds (``policyd.workers.ports``).
    """
    try:
        check_address(listen)
    except ValueError as exc:
        raise OSError(f"cannot listen on {exc}") from None
    path = unix_path(listen)
    if path is not None and os.path.exists(path) and not Path(path).is_socket():
        raise OSError(f"cannot listen on {listen}: {path} exists and is not a socket")
    try:
        if tls is not None:
            port = server.add_secure_port(listen, server_credentials(tls, source))
        else:
            port = server.add_insecure_port(listen)
    except RuntimeError:  # grpc's "Failed to bind to address ..."
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {listen}: the address is in use or not available here")
    return port


def restrict_socket(listen: str) -> None:
    """Owner and group only; call once the server started (the socket file exists)."""
    path = unix_path(listen)
    if path is not None and os.path.exists(path):
        os.chmod(path, SOCKET_MODE)


def address(listen: str, port: int) -> str:
    """What the startup line prints: ``HOST:PORT`` with the real port, or the Unix address."""
    if unix_path(listen) is not None:
        return listen
    return f"{listen.rsplit(':', 1)[0]}:{port}"
