"""The simulated provider: answers offline with deterministic text, usage and latency."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from policyd.api import DeltaSink, Message, ModelCall, ModelResponse, Role, UpstreamError, Usage
from policyd_plugins.simulated.behaviour import behave, chunks, per_chunk_delay


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
                if delay:
                    await asyncio.sleep(delay)
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

    async def aclose(self) -> None:
        return None
