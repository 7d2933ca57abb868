"""One TCP address for the whole group: the supervisor picks the port once and holds it.

Each worker binds the same ``HOST:PORT`` with ``SO_REUSEPORT`` and the kernel spreads new
connections over the workers' listening sockets. The supervisor first binds the address
*without* ``SO_REUSEPORT`` (so a port another process holds is an error, as for one daemon,
and port 0 gets a free port), then holds it with a socket bound with ``SO_REUSEPORT`` that
never listens: the kernel routes connections only to listening sockets, and the port stays
the group's while workers restart. Unix sockets cannot be shared this way (see ``docs/workers.md``).
"""

from __future__ import annotations

import socket
from typing import Any


class HeldPort:
    """An address held for the group (a plain class: the supervisor imports no ``dataclasses`` before
    it starts its workers; docs/deploy.md, "Start-up")."""

    def __init__(self, listen: str, port: int) -> None:
        self.listen = listen
        """What the workers bind: ``HOST:PORT`` with the real port."""
        self.port = port
        self.sockets: list[socket.socket] = []

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        self.sockets.clear()


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host, int(port)


Sockaddr = tuple[Any, ...]


def _resolve(host: str, port: int) -> list[tuple[int, Sockaddr]]:
    name = host.strip("[]") or None
    infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    seen: dict[tuple[int, str], tuple[int, Sockaddr]] = {}
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            seen.setdefault((int(family), str(sockaddr[0])), (int(family), tuple(sockaddr)))
    return list(seen.values())


def _socket(family: int, sockaddr: Sockaddr, *, share: bool) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if share:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and sockaddr[0] == "::":
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # as grpc binds [::]: both families
        s.bind(sockaddr)
    except OSError:
        s.close()
        raise
    return s


def hold(listen: str, flag: str = "--listen") -> HeldPort:
    """Bind ``listen`` (``HOST:PORT``, port 0 picks one) for a group of workers; OSError naming the flag."""
    host, port = _split(listen)
    try:
        targets = _resolve(host, port)
    except OSError as exc:
        raise OSError(f"cannot listen on {listen} ({flag}): {exc.strerror or exc}") from None
    if not targets:
        raise OSError(f"cannot listen on {listen} ({flag}): no IPv4 or IPv6 address")
    held = HeldPort(listen=listen, port=port)
    try:
        for family, sockaddr in targets:
            addr = (sockaddr[0], held.port, *sockaddr[2:])
            probe = _socket(family, addr, share=False)  # refuses a port someone else holds
            held.port = probe.getsockname()[1]
            probe.close()
            held.sockets.append(_socket(family, (sockaddr[0], held.port, *sockaddr[2:]), share=True))
    except OSError as exc:
        held.close()
        raise OSError(f"cannot listen on {listen} ({flag}): {exc.strerror or exc}") from None
    held.listen = f"{host}:{held.port}"
    return held
