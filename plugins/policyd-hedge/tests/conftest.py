"""The template's tests use policyd's testing kit, as any plugin's would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from policyd_hedge.latency import LATENCIES

pytest_plugins = ["policyd.testing"]


@pytest.fixture(autouse=True)
def fresh_latencies() -> Iterator[None]:
    """Each test starts with no observed latencies (the window is process-wide)."""
    LATENCIES.clear()
    yield
    LATENCIES.clear()
