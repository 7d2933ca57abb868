"""Fixtures of the fault suite: a fake upstream, a gauged provider host."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from faultkit import Gauge, GaugePlugin

from policyd.plugin.manager import PluginHost, default_host
from tests.plugins.fake_upstream import FakeUpstream


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    """A scriptable OpenAI-compatible upstream on 127.0.0.1:0 (the providers' own fake)."""
    upstream = FakeUpstream()
    await upstream.start()
    yield upstream
    await upstream.stop()


@pytest.fixture
def gauge() -> Gauge:
    return Gauge()


@pytest.fixture
def gauge_host(gauge: Gauge) -> PluginHost:
    host = default_host(entry_points=False)
    host.add(GaugePlugin(gauge), "gauge-test", version="test", origin="direct")
    return host
