"""Embedding domain types: the request, one provider call, its answer and the result.

Embeddings are routed like completions: a policy rule whose plan has ``strategy: embed``
names the embedding model and its fallbacks. A provider that can embed implements
:class:`EmbeddingProvider` besides ``complete``; the engine batches texts up to the
provider's limit, retries, caches each text and never mixes two models' vectors.
"""

from __future__ import annotations

import array
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from policyd.types import CacheMode, Constraints, ModelSpec, Outcome

EMBED_STRATEGY = "embed"
"""The plan strategy of embedding rules; completion requests never match them, and embeddings match only them."""

EMBEDDING_TAG = "embedding"
"""Catalog tag of embedding models."""


def vector(values: Sequence[float] | bytes) -> array.array[float]:
    """A float32 vector (``array('f')``): compact in memory, cached as its raw bytes."""
    out: array.array[float] = array.array("f")
    if isinstance(values, bytes):
        out.frombytes(values)
    else:
        out.extend(values)
    return out


class EncodingFormat(enum.StrEnum):
    FLOAT = "float"
    BASE64 = "base64"


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """A validated embedding request with the caller's intent."""

    request_id: str
    texts: tuple[str, ...]
    task: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    constraints: Constraints = field(default_factory=Constraints)
    cache_mode: CacheMode = CacheMode.DEFAULT
    policy: str = ""
    tenant: str = "default"
    dimensions: int | None = None
    deadline: float | None = None
    """Absolute deadline on the ``time.monotonic()`` clock, if any."""


@dataclass(frozen=True, slots=True)
class EmbedCall:
    """One upstream request: a batch of texts (within the provider's limit) for one model."""

    model: ModelSpec
    texts: tuple[str, ...]
    dimensions: int | None = None
    """Asked of the upstream only when it differs from the model's own length."""
    tenant: str = "default"
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class EmbedResponse:
    """A provider's vectors for an :class:`EmbedCall`, one per text, in order."""

    vectors: tuple[array.array[float], ...]
    input_tokens: int
    usage_estimated: bool = False
    latency_ms: float = 0.0


@runtime_checkable
class EmbeddingProvider(Protocol):
    """A provider that can embed (besides ``complete``)."""

    def embed_batch_limit(self, model: ModelSpec) -> int:
        """Most texts one upstream request may carry."""
        ...

    async def embed(self, call: EmbedCall) -> EmbedResponse:
        """Embed ``call.texts`` in one upstream request; failures raise UpstreamError with ``retryable`` set."""
        ...


class EmbedParams(BaseModel):
    """Parameters of an ``embed`` plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    """The embedding model (a catalog id)."""
    fallback: list[str] = []
    """Tried in order when the model is excluded or fails; each re-embeds the whole batch."""
    dimensions: int | None = Field(default=None, gt=0)
    """Vector length when the request asks for none; None: the model's own."""
    concurrency: int = Field(default=4, ge=1, le=64)
    """Upstream requests in flight at once when a batch is split."""


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """What Embed answers: the outcome (status, attempts, cost, explanation) and the vectors."""

    outcome: Outcome
    vectors: tuple[array.array[float], ...] = ()
    cached: tuple[bool, ...] = ()
    model: str = ""
    dimensions: int = 0
    input_tokens: int = 0


def model_dimensions(model: ModelSpec) -> int:
    """The model's own vector length (catalog ``options.dimensions``), 0 when unknown."""
    return int(model.options.get("dimensions", 0) or 0)


def dimensions_problem(model: ModelSpec, wanted: int | None) -> str | None:
    """Why ``model`` cannot give vectors of ``wanted`` length, or None when it can."""
    if EMBEDDING_TAG not in model.tags:
        return f"{model.id} is not an embedding model (no {EMBEDDING_TAG!r} tag)"
    own = model_dimensions(model)
    if wanted is None or wanted == own:
        return None
    low = int(model.options.get("min_dimensions", 0) or 0)
    if not low:
        return f"{model.id} gives {own} dimensions only (asked for {wanted})"
    if not low <= wanted <= own:
        return f"{model.id} gives {low} to {own} dimensions (asked for {wanted})"
    return None
