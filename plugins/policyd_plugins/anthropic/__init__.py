"""The ``anthropic`` provider kind: Claude models through Anthropic's Messages API."""

from __future__ import annotations

from collections.abc import Callable

from policyd.api import ProviderSpec, hookimpl
from policyd_plugins.anthropic.provider import AnthropicProvider, AnthropicSettings

POLICYD_API = "1.0"
"""The plugin API this plugin is written for (see docs/plugins.md)."""


@hookimpl
def policyd_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(ProviderSpec(kind="anthropic", factory=AnthropicProvider, settings=AnthropicSettings))
