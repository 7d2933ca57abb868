"""The ``anthropic`` provider kind: Claude models through Anthropic's Messages API."""

from __future__ import annotations

from collections.abc import Callable

from policyd.plugin import hookimpl
from policyd.plugin.specs import ProviderSpec
from policyd_anthropic.provider import AnthropicProvider, AnthropicSettings


@hookimpl
def policyd_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(ProviderSpec(kind="anthropic", factory=AnthropicProvider, settings=AnthropicSettings))
