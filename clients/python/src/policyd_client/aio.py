"""The asyncio client: the same methods as :class:`policyd_client.Client`, as coroutines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType

from policyd_client._defaults import Connection, NoFinalResponse, embed_request
from policyd_client.v1 import policyd_pb2 as pb


class AsyncClient(Connection):
    """Calls one policyd daemon from asyncio; errors are ``grpc.aio.AioRpcError``.

    Arguments: see :class:`policyd_client._defaults.Connection`. Create it inside the running event loop.
    """

    AIO = True

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    async def complete(self, request: pb.CompleteRequest, *, timeout: float | None = None) -> pb.CompleteResponse:
        """Runs the request's policy; the response's status says whether the answer was accepted."""
        return await self.stub.Complete(request, **self._call(timeout))

    async def stream_events(
        self, request: pb.CompleteRequest, *, timeout: float | None = None
    ) -> AsyncIterator[pb.StreamCompleteResponse]:
        """Every event of a streamed answer: text deltas and attempts, then one final response."""
        call = self.stub.StreamComplete(request, **self._call(timeout))
        try:
            async for event in call:
                yield event
        finally:
            call.cancel()  # a no-op once the stream has ended; ends the RPC if the caller stopped early

    async def stream(
        self,
        request: pb.CompleteRequest,
        on_delta: Callable[[str], object] | None = None,
        *,
        on_attempt: Callable[[pb.Attempt], object] | None = None,
        timeout: float | None = None,
    ) -> pb.CompleteResponse:
        """Complete with the answer's text handed to ``on_delta`` as it arrives, and each attempt to
        ``on_attempt`` once, when it is finished; returns the final response."""
        final = None
        async for event in self.stream_events(request, timeout=timeout):
            kind = event.WhichOneof("event")
            if kind == "delta" and on_delta is not None:
                on_delta(event.delta)
            elif kind == "attempt" and on_attempt is not None:
                on_attempt(event.attempt)
            elif kind == "final":
                final = event.final
        if final is None:
            raise NoFinalResponse()
        return final

    async def explain(self, request: pb.CompleteRequest, *, timeout: float | None = None) -> pb.Explanation:
        """The decision the policy would make for the request, without calling any model."""
        resp = await self.stub.Explain(request, **self._call(timeout))
        return resp.explanation

    async def report_outcome(
        self,
        request_id: str,
        success: bool,
        note: str = "",
        *,
        score: float | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Says whether an answer served its purpose; False when the same report was already recorded."""
        msg = pb.ReportOutcomeRequest(request_id=request_id, success=success, note=note, score=score)
        resp = await self.stub.ReportOutcome(msg, **self._call(timeout))
        return resp.changed

    async def get_stats(
        self, request: pb.GetStatsRequest | None = None, *, timeout: float | None = None
    ) -> pb.GetStatsResponse:
        """Cost per successful outcome and related figures, grouped as the request asks."""
        msg = request or pb.GetStatsRequest()
        return await self.stub.GetStats(msg, **self._call(timeout))

    async def embed(
        self,
        texts: Sequence[str],
        *,
        dimensions: int | None = None,
        task: str = "",
        tenant: str = "",
        timeout: float | None = None,
        request: pb.EmbedRequest | None = None,
    ) -> pb.EmbedResponse:
        """Vectors for ``texts`` (in order, all from one model) from the matching embedding rule."""
        msg = embed_request(texts, dimensions, task, tenant, request)
        return await self.stub.Embed(msg, **self._call(timeout))

    async def list_models(self, provider: str = "", tag: str = "", *, timeout: float | None = None) -> list[pb.Model]:
        """The model catalog, filtered by provider and tag when they are given."""
        msg = pb.ListModelsRequest(provider=provider, tag=tag)
        resp = await self.stub.ListModels(msg, **self._call(timeout))
        return list(resp.models)
