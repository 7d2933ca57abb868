"""policyd's simulated provider and the bundled model catalog, as a plugin.

It runs the daemon with no key and no network: models named after the real
catalog, with their list prices, context windows and deterministic latency and
quality profiles. Every answer says it is simulated.
"""

from __future__ import annotations

from collections.abc import Callable

from policyd.api import CatalogSpec, ProviderSpec, hookimpl
from policyd_plugins.simulated.catalog import CATALOG
from policyd_plugins.simulated.embedding_catalog import EMBEDDING_MODELS
from policyd_plugins.simulated.provider import SimulatedProvider, SimulatedSettings

POLICYD_API = "1.0"
"""The plugin API this plugin is written for (see docs/plugins.md)."""


@hookimpl
def policyd_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(ProviderSpec(kind="simulated", factory=SimulatedProvider, settings=SimulatedSettings))


@hookimpl
def policyd_register_catalogs(register: Callable[[CatalogSpec], None]) -> None:
    register(CatalogSpec(name="default", models=[entry.spec for entry in CATALOG]))
    register(CatalogSpec(name="embeddings", models=EMBEDDING_MODELS))
