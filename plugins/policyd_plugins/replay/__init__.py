"""The ``replay`` provider: answers with recorded model outputs, for offline evaluation.

``policyd eval`` runs the real engine, strategies and gates over recorded datasets by
pointing every model at this provider. It registers through the public hooks like any
third-party provider.
"""

from __future__ import annotations

from collections.abc import Callable

from policyd.api import ProviderSpec, hookimpl
from policyd_plugins.replay.provider import ReplayProvider, ReplaySettings

__all__ = ["ReplayProvider", "ReplaySettings"]

POLICYD_API = "1.0"
"""The plugin API this plugin is written for (see docs/plugins.md)."""


@hookimpl
def policyd_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(ProviderSpec(kind="replay", factory=ReplayProvider.from_settings, settings=ReplaySettings))
