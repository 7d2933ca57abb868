"""The bundled model catalog: the seed's models with their public list prices.

Prices are USD per 1M tokens (input / output) at the provider named in each entry's
``source``, as published on 2025-09-01; context windows are the vendors' documented
maxima. Open-weight models are priced at a hosted API serving them; Gemma-3-270M is
a self-hosted model with no per-token price. The simulated provider serves all of
them offline; a policy file points any entry at a real provider.
"""

from __future__ import annotations

from dataclasses import dataclass

from policyd.api import ModelSpec


@dataclass(frozen=True)
class Profile:
    """Deterministic behaviour of a simulated model."""

    ttft_ms: float
    tokens_per_s: float
    quality: dict[str, float]
    """Probability of a good answer per task; ``*`` is the fallback."""

    def quality_for(self, task: str) -> float:
        return self.quality.get(task, self.quality["*"])


@dataclass(frozen=True)
class Entry:
    spec: ModelSpec
    profile: Profile
    source: str


def _m(
    id: str,
    upstream: str,
    price: tuple[float, float],
    context: int,
    license: str,
    tags: set[str],
    *,
    thinking: bool = False,
    local: bool = False,
    source: str,
    ttft_ms: float,
    tps: float,
    quality: dict[str, float],
) -> Entry:
    spec = ModelSpec(
        id=id,
        provider="simulated",
        upstream=upstream,
        input_usd_per_mtok=price[0],
        output_usd_per_mtok=price[1],
        context_window=context,
        license=license,
        tags=frozenset(tags),
        thinking=thinking,
        local=local,
    )
    return Entry(spec=spec, profile=Profile(ttft_ms=ttft_ms, tokens_per_s=tps, quality=quality), source=source)


CATALOG: tuple[Entry, ...] = (
    # ---- open-weight drafters
    _m(
        "qwen3-coder-480b-a35b",
        "Qwen/Qwen3-Coder-480B-A35B-Instruct",
        (2.00, 2.00),
        262_144,
        "apache-2.0",
        {"coding", "agentic", "tool-use"},
        source="together.ai/pricing (Qwen3-Coder 480B A35B Instruct FP8)",
        ttft_ms=450,
        tps=90,
        quality={"coding": 0.80, "agentic": 0.72, "*": 0.65},
    ),
    _m(
        "glm-4.5",
        "zai-org/GLM-4.5",
        (0.60, 2.20),
        131_072,
        "mit",
        {"coding", "creative", "agentic", "tool-use"},
        thinking=True,
        source="docs.z.ai/guides/overview/pricing (GLM-4.5)",
        ttft_ms=600,
        tps=70,
        quality={"coding": 0.74, "creative": 0.78, "agentic": 0.75, "*": 0.70},
    ),
    _m(
        "kimi-k2",
        "moonshotai/Kimi-K2-Instruct",
        (0.60, 2.50),
        131_072,
        "modified-mit",
        {"agentic", "tool-use", "coding"},
        source="platform.moonshot.ai/docs/pricing/chat (kimi-k2, cache miss)",
        ttft_ms=700,
        tps=50,
        quality={"agentic": 0.80, "coding": 0.72, "*": 0.68},
    ),
    _m(
        "gpt-oss-120b",
        "openai/gpt-oss-120b",
        (0.15, 0.60),
        131_072,
        "apache-2.0",
        {"reasoning", "coding", "extraction"},
        thinking=True,
        source="together.ai/pricing (OpenAI gpt-oss-120B)",
        ttft_ms=300,
        tps=150,
        quality={"coding": 0.66, "extraction": 0.80, "*": 0.64},
    ),
    _m(
        "llama-3.1-8b",
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
        (0.18, 0.18),
        131_072,
        "llama3.1",
        {"chat", "extraction"},
        source="together.ai/pricing (Llama 3.1 8B Instruct Turbo)",
        ttft_ms=150,
        tps=200,
        quality={"extraction": 0.62, "*": 0.45},
    ),
    _m(
        "gemma-3-270m",
        "google/gemma-3-270m-it",
        (0.0, 0.0),
        32_768,
        "gemma",
        {"extraction", "classification"},
        local=True,
        source="self-hosted (ai.google.dev/gemma/docs/core: open weights, no per-token price)",
        ttft_ms=20,
        tps=400,
        quality={"extraction": 0.40, "classification": 0.45, "*": 0.20},
    ),
    # ---- frontier validators
    _m(
        "claude-sonnet-4",
        "claude-sonnet-4-20250514",
        (3.00, 15.00),
        200_000,
        "proprietary",
        {"validator", "coding", "creative", "agentic", "tool-use"},
        thinking=True,
        source="docs.anthropic.com/en/docs/about-claude/pricing (Claude Sonnet 4)",
        ttft_ms=900,
        tps=60,
        quality={"*": 0.92},
    ),
    _m(
        "claude-opus-4.1",
        "claude-opus-4-1-20250805",
        (15.00, 75.00),
        200_000,
        "proprietary",
        {"validator", "coding", "creative", "agentic"},
        thinking=True,
        source="docs.anthropic.com/en/docs/about-claude/pricing (Claude Opus 4.1)",
        ttft_ms=1500,
        tps=35,
        quality={"*": 0.96},
    ),
    _m(
        "o3",
        "o3-2025-04-16",
        (2.00, 8.00),
        200_000,
        "proprietary",
        {"validator", "reasoning", "coding"},
        thinking=True,
        source="platform.openai.com/docs/pricing (o3)",
        ttft_ms=2000,
        tps=80,
        quality={"*": 0.93},
    ),
)

PROFILES: dict[str, Profile] = {e.spec.id: e.profile for e in CATALOG}
