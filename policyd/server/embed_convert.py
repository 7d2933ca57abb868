"""Embed's protobuf ⇄ domain translation (the servicer's Embed method stays thin)."""

from __future__ import annotations

from policyd.embedding import EmbedRequest, EmbedResult
from policyd.errors import InvalidArgument
from policyd.ids import new_id
from policyd.server.convert import (
    _CACHE_MODES,
    DEFAULT_CONSTRAINTS,
    STATUS_TO_PB,
    _constraints,
    attempt_to_proto,
    explanation_to_proto,
)
from policyd.v1 import policyd_pb2 as pb

MAX_TEXTS = 8192
"""Texts one Embed request may carry (the daemon splits them into upstream batches)."""
MAX_DIMENSIONS = 65_536


def embed_request_from_proto(msg: pb.EmbedRequest, *, tenant: str, deadline: float | None) -> EmbedRequest:
    """Validate and translate; every error names the field."""
    if not msg.texts:
        raise InvalidArgument("texts", "at least one text is required")
    if len(msg.texts) > MAX_TEXTS:
        raise InvalidArgument("texts", f"at most {MAX_TEXTS} texts (got {len(msg.texts)})")
    for i, text in enumerate(msg.texts):
        if not text:
            raise InvalidArgument(f"texts[{i}]", "must not be empty")
    dimensions = None
    if msg.HasField("dimensions"):
        if not 0 < msg.dimensions <= MAX_DIMENSIONS:
            raise InvalidArgument("dimensions", f"must be between 1 and {MAX_DIMENSIONS} (got {msg.dimensions})")
        dimensions = msg.dimensions
    cache_mode = _CACHE_MODES.get(msg.cache_mode)
    if cache_mode is None:
        raise InvalidArgument("cache_mode", f"unknown value {msg.cache_mode}")
    if any(not k for k in msg.labels):
        raise InvalidArgument("labels", "label keys must not be empty")
    return EmbedRequest(
        request_id=msg.request_id or new_id(),
        texts=tuple(msg.texts),
        task=msg.task,
        labels=dict(msg.labels),
        constraints=_constraints(msg.constraints) if msg.HasField("constraints") else DEFAULT_CONSTRAINTS,
        cache_mode=cache_mode,
        policy=msg.policy,
        tenant=tenant,
        dimensions=dimensions,
        deadline=deadline,
    )


def embed_result_to_proto(r: EmbedResult) -> pb.EmbedResponse:
    o = r.outcome
    return pb.EmbedResponse(
        request_id=o.request_id,
        embeddings=[
            pb.Embedding(index=i, values=v.tolist(), cached=c)
            for i, (v, c) in enumerate(zip(r.vectors, r.cached, strict=True))
        ],
        model=r.model,
        dimensions=r.dimensions,
        input_tokens=r.input_tokens,
        total_cost_usd=o.total_cost_usd,
        saved_usd=o.saved_usd,
        status=STATUS_TO_PB[o.status],
        attempts=[attempt_to_proto(a) for a in o.attempts],
        explanation=explanation_to_proto(o.explanation),
        trace_id=o.trace_id,
        decision_id=o.decision_id,
    )
