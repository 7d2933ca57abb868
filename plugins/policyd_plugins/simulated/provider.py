"""The simulated provider: answers offline with deterministic text, usage and latency."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from policyd.api import (
    DeltaSink,
    EmbedCall,
    EmbedResponse,
    Message,
    ModelCall,
    ModelResponse,
    ModelSpec,
    Role,
    UpstreamError,
    Usage,
    tokens,
)
from policyd_plugins.simulated.behaviour import behave, chunks, per_chunk_delay
from policyd_plugins.simulated.embeddings import simulated_embedding

EMBED_BATCH_LIMIT = 2048
EMBED_BASE_MS = 40.0
"""Simulated time of one upstream embedding request, before ``latency_scale``."""
EMBED_PER_TEXT_MS = 0.5


class SimulatedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_scale: float = Field(default=1.0, ge=0)
    """Multiplies every model's profiled latency; 0 answers at once."""
    seed: str = ""
    """Changes every deterministic choice (answer quality, lengths, judgements)."""


class SimulatedProvider:
    def __init__(self, name: str, settings: SimulatedSettings) -> None:
        self.name = name
        self.settings = settings

    async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
        b = behave(call, seed=self.settings.seed, latency_scale=self.settings.latency_scale)
        if b.error:
            await asyncio.sleep(b.ttft_s)
            raise UpstreamError(self.name, f"{b.error} for {call.model.id}", retryable=False, status=503)
        if on_delta is None:
            await asyncio.sleep(b.latency_s)
        else:
            await asyncio.sleep(b.ttft_s)
            pieces = chunks(b.text)
            delay = per_chunk_delay(b, len(pieces))
            for piece in pieces:
                on_delta(piece)
                await asyncio.sleep(delay)  # at zero latency still a turn of the loop: the stream sends the piece
        message = Message(role=Role.ASSISTANT, content=b.text, tool_calls=b.tool_calls)
        return ModelResponse(
            message=message,
            usage=Usage(
                input_tokens=b.input_tokens,
                output_tokens=b.output_tokens,
                reasoning_tokens=b.reasoning_tokens,
            ),
            finish_reason=b.finish_reason,
            response_model=f"simulated/{call.model.upstream}",
            logprobs=b.logprobs,
        )

    def embed_batch_limit(self, model: ModelSpec) -> int:
        return EMBED_BATCH_LIMIT

    async def embed(self, call: EmbedCall) -> EmbedResponse:
        """Deterministic unit vectors from the texts (see ``embeddings``), after a profiled delay."""
        scale = self.settings.latency_scale
        await asyncio.sleep(scale * (EMBED_BASE_MS + EMBED_PER_TEXT_MS * len(call.texts)) / 1000)
        vectors = tuple(simulated_embedding(call.model, t, call.dimensions, self.settings.seed) for t in call.texts)
        return EmbedResponse(vectors=vectors, input_tokens=sum(tokens.text_tokens(t) for t in call.texts))

    async def aclose(self) -> None:
        return None
