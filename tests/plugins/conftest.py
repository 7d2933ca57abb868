"""Fixtures for provider tests: a fake upstream (or a raw HTTP/1.1 server) started on 127.0.0.1:0 for each test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fake_upstream import FakeUpstream
from raw_server import RawServer


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    s = RawServer()
    srv = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    s.port = srv.sockets[0].getsockname()[1]
    yield s
    srv.close()
