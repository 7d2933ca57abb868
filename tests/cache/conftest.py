"""Fixtures of the cache tests."""

from __future__ import annotations

import pytest
from cache_helpers import CountingPlugin, Upstream

from policyd.plugin.manager import PluginHost, default_host


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def counting_host(upstream: Upstream) -> PluginHost:
    host = default_host(entry_points=False)
    host.add(CountingPlugin(upstream), "counting-test", version="test", origin="direct")
    return host
