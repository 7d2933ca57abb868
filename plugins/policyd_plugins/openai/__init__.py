"""The ``openai-compatible`` provider kind: OpenAI's Chat Completions API and every server that speaks it.

One plugin serves OpenAI, vLLM, SGLang, Ollama, llama.cpp's server, OpenRouter,
DeepSeek, Moonshot (Kimi), Zhipu (GLM), DashScope (Qwen), Together, Groq and
Fireworks: set ``base_url`` and, for hosted APIs, ``api_key_env``.
"""

from __future__ import annotations

from collections.abc import Callable

from policyd.api import ProviderSpec, hookimpl
from policyd_plugins.openai.provider import OpenAIProvider, OpenAISettings

POLICYD_API = "1.0"
"""The plugin API this plugin is written for (see docs/plugins.md)."""


@hookimpl
def policyd_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(ProviderSpec(kind="openai-compatible", factory=OpenAIProvider, settings=OpenAISettings))
