"""Fixtures for provider tests: a fake upstream started on 127.0.0.1:0 for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_upstream import FakeUpstream


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.stop()
