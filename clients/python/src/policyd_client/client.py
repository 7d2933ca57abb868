"""The synchronous client."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from types import TracebackType

from policyd_client._defaults import Connection, NoFinalResponse, embed_request
from policyd_client.v1 import policyd_pb2 as pb


class Client(Connection):
    """Calls one policyd daemon; thread-safe. Errors are ``grpc.RpcError`` with the daemon's status.

    Arguments: see :class:`policyd_client._defaults.Connection`.
    """

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def complete(self, request: pb.CompleteRequest, *, timeout: float | None = None) -> pb.CompleteResponse:
        """Runs the request's policy; the response's status says whether the answer was accepted."""
        return self.stub.Complete(request, **self._call(timeout))

    def stream_events(
        self, request: pb.CompleteRequest, *, timeout: float | None = None
    ) -> Iterator[pb.StreamCompleteResponse]:
        """Every event of a streamed answer: text deltas and attempts, then one final response."""
        call = self.stub.StreamComplete(request, **self._call(timeout))
        try:
            yield from call
        finally:
            call.cancel()  # a no-op once the stream has ended; ends the RPC if the caller stopped early

    def stream(
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
        for event in self.stream_events(request, timeout=timeout):
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

    def explain(self, request: pb.CompleteRequest, *, timeout: float | None = None) -> pb.Explanation:
        """The decision the policy would make for the request, without calling any model."""
        resp = self.stub.Explain(request, **self._call(timeout))
        return resp.explanation

    def report_outcome(
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
        return self.stub.ReportOutcome(msg, **self._call(timeout)).changed

    def get_stats(
        self, request: pb.GetStatsRequest | None = None, *, timeout: float | None = None
    ) -> pb.GetStatsResponse:
        """Cost per successful outcome and related figures, grouped as the request asks."""
        msg = request or pb.GetStatsRequest()
        return self.stub.GetStats(msg, **self._call(timeout))

    def embed(
        self,
        texts: Sequence[str],
        *,
        dimensions: int | None = None,
        task: str = "",
        tenant: str = "",
        timeout: float | None = None,
        request: pb.EmbedRequest | None = None,
    ) -> pb.EmbedResponse:
        """Vectors for ``texts`` (in order, all from one model) from the matching embedding rule.

        ``request`` carries anything else (labels, constraints, cache mode, policy); the
        keyword arguments fill it in.
        """
        return self.stub.Embed(embed_request(texts, dimensions, task, tenant, request), **self._call(timeout))

    def list_models(self, provider: str = "", tag: str = "", *, timeout: float | None = None) -> list[pb.Model]:
        """The model catalog, filtered by provider and tag when they are given."""
        msg = pb.ListModelsRequest(provider=provider, tag=tag)
        return list(self.stub.ListModels(msg, **self._call(timeout)).models)
