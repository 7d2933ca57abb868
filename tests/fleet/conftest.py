"""Fixtures: one real Redis/Valkey and one real PostgreSQL per test module, stopped after."""

from __future__ import annotations

import shutil
import tempfile
import uuid
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
    # Not under pytest's temp dir: that is private to root, and PostgreSQL runs as nobody.
    folder = Path(tempfile.mkdtemp(prefix="policyd-test-pg-"))
    server = PostgresServer(folder)
    try:
        server.init()
        server.start()
        server.create_db()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def pg_dsn(postgres_server: PostgresServer) -> str:
    """A fresh database on the module's server (so tests never see each other's outcomes)."""
    import asyncpg

    name = f"t{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return postgres_server.dsn.rsplit("/", 1)[0] + f"/{name}"
