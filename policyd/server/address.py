"""Listening addresses as ``policyd serve`` reads them, and its defaults: no grpc here.

``policyd serve --workers N``'s supervisor checks the addresses and holds the ports without
ever loading grpc (docs/deploy.md, "Start-up"); :mod:`policyd.server.listen` binds them.
"""

from __future__ import annotations

UNIX_PREFIX = "unix:"
DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_GRACE_S = 10.0
DEFAULT_RELOAD_INTERVAL_S = 2.0


def unix_path(listen: str) -> str | None:
    """The socket path of ``unix:///run/p.sock`` or ``unix:relative.sock``, else None."""
    if not listen.startswith(UNIX_PREFIX):
        return None
    rest = listen[len(UNIX_PREFIX) :]
    return rest[2:] if rest.startswith("//") else rest


def check_address(address: str) -> None:
    """Refuse what grpc would misread: no port, or a port past 65535 (grpc wraps 99999 to 34463)."""
    if unix_path(address) is not None:
        if not unix_path(address):
            raise ValueError(f"{address!r}: expected unix:///path/to.sock")
        return
    _, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r}: expected HOST:PORT with a port from 0 to 65535, or unix:///path/to.sock")
