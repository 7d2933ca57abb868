"""Load-time checks of ``embed`` plans: embedding models, served by providers that can embed.

A provider kind can embed when the class its plugin registered has an ``embed`` method
(:class:`policyd.embedding.EmbeddingProvider`). Anthropic's API has no embedding
endpoint, so an ``embed`` plan on an ``anthropic`` model fails ``policyd check``.
"""

from __future__ import annotations

from collections.abc import Mapping

from policyd.config.model import ProviderInstance
from policyd.embedding import EMBEDDING_TAG, EmbedParams
from policyd.plugin.specs import Registered
from policyd.types import ModelSpec


def embed_plan_problem(
    params: EmbedParams,
    transforms: int,
    catalog: Mapping[str, ModelSpec],
    providers: Mapping[str, ProviderInstance],
    registered: Registered,
) -> tuple[str, str] | None:
    """``(key, problem)`` for the first model of an embed plan that cannot embed, or None."""
    if transforms:
        return "transforms", "an embed plan takes no request transforms (they rewrite completion messages)"
    for key, model_id in (("model", params.model), *((f"fallback[{i}]", m) for i, m in enumerate(params.fallback))):
        model = catalog[model_id]
        if EMBEDDING_TAG not in model.tags:
            return key, f"{model_id} is not an embedding model (its catalog entry has no {EMBEDDING_TAG!r} tag)"
        instance = providers[model.provider]
        factory = registered.providers[instance.kind].factory
        if not callable(getattr(factory, "embed", None)):
            return key, (
                f"{model_id} is served by provider {instance.name!r} (kind {instance.kind!r}),"
                f" which has no embedding API"
            )
    return None
