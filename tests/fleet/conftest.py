"""Fixtures: one real Redis/Valkey and one real PostgreSQL per test module, stopped after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet.servers import PostgresServer, RedisServer, pg_bindir, redis_binary


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if redis_binary() is None:
        pytest.skip("redis-server/valkey-server not installed: run scripts/ci_services.sh")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    if pg_bindir() is None:
        pytest.skip("postgresql not installed: run scripts/ci_services.sh")
    server = PostgresServer(Path(tmp_path_factory.mktemp("pg")))
    server.init()
    server.start()
    server.create_db()
    yield server
    server.stop()
