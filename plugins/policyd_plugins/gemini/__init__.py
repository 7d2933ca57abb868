"""The ``gemini`` provider kind: Google's Gemini API (generateContent and streamGenerateContent).

The key travels in the ``x-goog-api-key`` header, never in a ``?key=`` query that
access logs and traces would record.
"""

from __future__ import annotations

from collections.abc import Callable

from policyd.api import ProviderSpec, hookimpl
from policyd_plugins.gemini.provider import GeminiProvider, GeminiSettings

POLICYD_API = "1.0"
"""The plugin API this plugin is written for (see docs/plugins.md)."""


@hookimpl
def policyd_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(ProviderSpec(kind="gemini", factory=GeminiProvider, settings=GeminiSettings))
