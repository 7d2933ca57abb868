"""The group's address: picked once, held without listening, shared only by SO_REUSEPORT binds."""

from __future__ import annotations

import socket

import pytest

from policyd.workers.ports import hold


def test_port_0_is_picked_once_and_the_workers_can_bind_it_but_nobody_else_can():
    held = hold("127.0.0.1:0")
    try:
        assert held.port > 0 and held.listen == f"127.0.0.1:{held.port}"
        worker = socket.socket()
        worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        worker.bind(("127.0.0.1", held.port))  # what each worker does (grpc.so_reuseport=1)
        worker.listen()
        intruder = socket.socket()
        with pytest.raises(OSError):
            intruder.bind(("127.0.0.1", held.port))  # a daemon on its own binds without SO_REUSEPORT
        intruder.close()
        client = socket.create_connection(("127.0.0.1", held.port), timeout=5)
        conn, _ = worker.accept()  # connections go to the listening worker, never to the holder
        conn.close()
        client.close()
        worker.close()
    finally:
        held.close()


def test_a_busy_port_is_refused_naming_the_flag():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=r"--http-listen"):
            hold(f"127.0.0.1:{port}", "--http-listen")
    finally:
        busy.close()
