"""Cache test helpers: a counting upstream registered through the public hooks, configs, requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from policyd_plugins.simulated.provider import SimulatedProvider, SimulatedSettings
from pydantic import BaseModel, ConfigDict

from policyd.cache.settings import CacheSettings
from policyd.cache.stats import CacheStats
from policyd.cache.store import ResponseStore
from policyd.plugin import hookimpl
from policyd.plugin.specs import DeltaSink, ProviderSpec
from policyd.types import ModelCall, ModelResponse
from policyd.v1 import policyd_pb2 as pb


class CountingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_s: float = 0.0
    """Time each call takes, so that concurrent calls overlap."""


@dataclass
class Upstream:
    """What the counting provider saw: every call that reached it, in order."""

    calls: list[ModelCall] = field(default_factory=list)
    called: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at the first call."""

    def __len__(self) -> int:
        return len(self.calls)


class CountingPlugin:
    """A provider kind ``counting``: the simulated upstream, counted, optionally slowed down."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    @hookimpl
    def policyd_register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        upstream = self.upstream

        class Counting:
            def __init__(self, name: str, settings: CountingSettings) -> None:
                self.settings = settings
                self.inner = SimulatedProvider(name, SimulatedSettings(latency_scale=0.0))

            async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
                upstream.calls.append(call)
                upstream.called.set()
                await asyncio.sleep(self.settings.delay_s)
                return await self.inner.complete(call, on_delta)

            async def aclose(self) -> None:
                return None

        register(ProviderSpec(kind="counting", factory=Counting, settings=CountingSettings))


COUNTED = """
version: counted
providers:
  up: {kind: counting, delay_s: DELAY}
models:
  gpt-oss-120b: {provider: up}
  glm-4.5: {provider: up}
policies:
  default:
    rules:
      - name: one
        plan: {strategy: single, params: {model: gpt-oss-120b}}
  low:
    rules:
      - name: low
        plan: {strategy: single, params: {model: glm-4.5, effort: low}}
  high:
    rules:
      - name: high
        plan: {strategy: single, params: {model: glm-4.5, effort: high}}
  uncached:
    rules:
      - name: cache-off
        plan: {strategy: single, params: {model: gpt-oss-120b}, cache: {enabled: false}}
  short:
    rules:
      - name: short
        plan: {strategy: single, params: {model: gpt-oss-120b}, cache: {ttl_s: 1}}
"""


def counted_config(delay_s: float = 0.0) -> str:
    return COUNTED.replace("DELAY", str(delay_s))


def user(text: str, **kw: object) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)


def committed_entries(cache: Path) -> int:
    """Entries another process can read from ``cache`` right now (committed SQLite rows)."""
    store = ResponseStore(cache, CacheSettings(), CacheStats())
    try:
        return store.usage().entries
    finally:
        store.close()
