"""The PolicyService servicer: thin methods that translate and delegate to the engine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, Protocol

import grpc.aio

from policyd.config.security import LimitsConfig
from policyd.daemon import Daemon
from policyd.errors import DeadlineExceeded
from policyd.plugin.specs import Progress
from policyd.server import convert, embed_convert
from policyd.server.idempotency import GroupKeys, IdempotencyKeys, replay_events
from policyd.server.limits import check_request_limits
from policyd.server.replay import ReplayMemo
from policyd.types import Attempt, Outcome, OutcomeStatus, Request
from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

DEFAULT_LIMITS = LimitsConfig()

IdentityFn = Callable[[grpc.aio.ServicerContext, pb.CompleteRequest], str]


class StatsService(Protocol):
    """What the ledger offers the servicer (ReportOutcome and GetStats)."""

    async def report(self, msg: pb.ReportOutcomeRequest, tenant: str | None) -> pb.ReportOutcomeResponse: ...

    async def stats(self, msg: pb.GetStatsRequest) -> pb.GetStatsResponse: ...


def _answerable(outcome: Outcome) -> Outcome:
    """An outcome the deadline cut short with nothing to show is a DEADLINE_EXCEEDED error."""
    if outcome.status is OutcomeStatus.DEADLINE_EXCEEDED and outcome.output is None:
        made = len(outcome.attempts)
        last = outcome.attempts[-1] if outcome.attempts else None
        where = f"; last: {last.model}: {last.error}" if last is not None and last.error else ""
        plural = "" if made == 1 else "s"
        raise DeadlineExceeded(
            f"deadline exceeded after {made} attempt{plural} (${outcome.total_cost_usd:.6f} spent{where})",
            metadata={
                "policy": outcome.explanation.policy,
                "attempts": str(made),
                "spent_usd": f"{outcome.total_cost_usd:.6f}",
                "request_id": outcome.request_id,
                **({"model": last.model, "provider": last.provider} if last is not None else {}),
            },
        )
    return outcome


async def _take(queue: asyncio.Queue[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The next event of a stream's queue and every one already waiting behind it."""
    batch = [await queue.get()]
    while not queue.empty():
        batch.append(queue.get_nowait())
    return batch


def _coalesced(batch: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``batch`` with each run of text pieces of one kind joined into one piece, in order.

    Text that arrived while the previous message was being sent goes out as one message
    (gRPC pays per message: a burst of 15 chunks costs one send, not 15). A stream whose
    pieces arrive apart, as a model generates them, sends each as it came.
    """
    out: list[tuple[str, Any]] = []
    for kind, item in batch:
        if out and kind in ("delta", "provisional") and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + item)
        else:
            out.append((kind, item))
    return out


class PolicyServicer(pb_grpc.PolicyServiceServicer):
    def __init__(
        self,
        daemon: Daemon,
        identity: IdentityFn | None = None,
        stats: StatsService | None = None,
        stats_scope: Callable[[str], str] | None = None,
        report_scope: Callable[[], str | None] | None = None,
        operator: Callable[[], bool] | None = None,
    ):
        self.daemon = daemon
        self.identity = identity or self._body_tenant
        self.stats = stats
        self.stats_scope = stats_scope
        """Maps GetStats' tenant filter to what the caller may see (auth narrows it to its own tenant)."""
        self.report_scope = report_scope
        """The tenant whose outcomes the caller may report on; None for any."""
        self.operator = operator or (lambda: True)
        """Whether the caller may see operator details (GetStats.config_error)."""
        self.replays = _replay_memo(daemon)
        """Repeated all-hit requests answered from memory; None without a cache."""
        self.keys = IdempotencyKeys(
            lambda: self._limits().idempotency_window_s,
            lambda: self._limits().idempotency_max_keys,
            group=_group_keys(daemon),
        )

    def _limits(self) -> LimitsConfig:
        raw = self.daemon.config.raw
        return raw.limits if raw is not None else DEFAULT_LIMITS

    def _body_tenant(self, context: grpc.aio.ServicerContext, msg: pb.CompleteRequest) -> str:
        """Without authentication the body's tenant is trusted (a sidecar's own pod)."""
        return msg.tenant or self.daemon.config.defaults.tenant

    def _request(self, msg: pb.CompleteRequest, context: grpc.aio.ServicerContext) -> Request:
        config = self.daemon.config
        tenant = self.identity(context, msg)
        check_request_limits(msg, config.raw.limits)
        defaults = config.defaults
        deadline = convert.deadline_from(context.time_remaining(), defaults.deadline_ms, defaults.max_deadline_ms)
        return convert.request_from_proto(msg, tenant=tenant, deadline=deadline)

    async def Complete(
        self, request: pb.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompleteResponse | bytes:
        """Most calls carry no idempotency key: a repeat of an all-hit run is replayed
        (``policyd.server.replay``) and its reply sent as it was encoded. This path runs in this
        coroutine itself (no frame of its own); the others go through :meth:`_keyed`."""
        replays = self.replays
        if request.request_id or replays is None or not replays.outermost():
            return await self._keyed(request, context)
        tenant = self.identity(context, request)
        ticket = replays.ticket(tenant, request.SerializeToString())
        config = self.daemon.config
        defaults = config.defaults
        deadline = convert.deadline_from(context.time_remaining(), defaults.deadline_ms, defaults.max_deadline_ms)
        domain = ticket.request(deadline) if ticket is not None else None
        if domain is None:  # not remembered: validated and converted
            check_request_limits(request, config.raw.limits)
            domain = convert.request_from_proto(request, tenant=tenant, deadline=deadline)
        run = ticket.run if ticket is not None else None
        outcome = _answerable(await self.daemon.engine.complete(domain, run=run))
        encoded = ticket.encode(outcome) if ticket is not None else None
        return encoded if encoded is not None else convert.outcome_to_proto(outcome)

    async def _keyed(self, request: pb.CompleteRequest, context: grpc.aio.ServicerContext) -> pb.CompleteResponse:
        """A call with an idempotency key (answered once per key), or any call without a replay memo."""
        domain = self._request(request, context)
        if not request.request_id:
            return convert.outcome_to_proto(_answerable(await self.daemon.engine.complete(domain)))

        async def first() -> pb.CompleteResponse:
            return convert.outcome_to_proto(_answerable(await self.daemon.engine.complete(domain)))

        return await self.keys.run(domain.tenant, request, first)

    async def StreamComplete(
        self, request: pb.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamCompleteResponse]:
        domain = self._request(request, context)
        claim = await self.keys.claim(domain.tenant, request)
        while claim is not None and not claim.owner:  # a duplicate: replay the first answer
            answer = await claim.replay()
            if answer is not None:
                for event in replay_events(answer):
                    yield event
                return
            claim = await self.keys.claim(domain.tenant, request)  # the first was abandoned: run it
        try:
            async with aclosing(self._stream(domain)) as events:  # closed at once if the caller leaves
                async for event in events:
                    if claim is not None and event.HasField("final"):
                        claim.settle(event.final)
                    yield event
        except BaseException as exc:
            if claim is not None:
                claim.fail(exc)
            raise

    async def _stream(self, domain: Request) -> AsyncGenerator[pb.StreamCompleteResponse, None]:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        progress = Progress(
            on_delta=lambda text: queue.put_nowait(("delta", text)),
            on_attempt=lambda attempt: queue.put_nowait(("attempt", attempt)),
            on_provisional=lambda text: queue.put_nowait(("provisional", text)),
            on_settle=lambda confirmed, reason: queue.put_nowait(("settle", (confirmed, reason))),
        )
        task = asyncio.create_task(self.daemon.engine.complete(domain, progress))
        task.add_done_callback(lambda _: queue.put_nowait(("done", None)))
        streamed = False
        pending: list[str] = []  # provisional text not settled yet
        try:
            done = False
            while not done:
                for kind, item in _coalesced(await _take(queue)):
                    if kind == "done":
                        done = True
                        break
                    if kind == "delta":
                        streamed = True
                        yield pb.StreamCompleteResponse(delta=item)
                    elif kind == "provisional":
                        pending.append(item)
                        yield pb.StreamCompleteResponse(provisional_delta=item)
                    elif kind == "settle":
                        confirmed, reason = item
                        streamed = streamed or confirmed
                        pending.clear()
                        yield pb.StreamCompleteResponse(
                            provisional_verdict=convert.provisional_verdict(confirmed, reason)
                        )
                    else:
                        attempt: Attempt = item
                        yield pb.StreamCompleteResponse(attempt=convert.attempt_to_proto(attempt))
            outcome = _answerable(task.result())
            text = outcome.output.content if outcome.output is not None else ""
            if pending:  # the strategy stopped before a verdict (budget, deadline): settle by the answer
                kept = "".join(pending) == text and bool(text)
                streamed = streamed or kept
                reason = "" if kept else f"not the answer ({outcome.status.value})"
                yield pb.StreamCompleteResponse(provisional_verdict=convert.provisional_verdict(kept, reason))
            if not streamed and text:
                yield pb.StreamCompleteResponse(delta=text)
            yield pb.StreamCompleteResponse(final=convert.outcome_to_proto(outcome))
        finally:
            if not task.done():
                task.cancel()  # the client went away: abort the upstream calls

    async def Explain(self, request: pb.CompleteRequest, context: grpc.aio.ServicerContext) -> pb.ExplainResponse:
        explanation = self.daemon.engine.explain(self._request(request, context))
        return pb.ExplainResponse(explanation=convert.explanation_to_proto(explanation))

    async def Embed(self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        config = self.daemon.config
        tenant = self.identity(context, request)  # reads tenant and policy, which Embed has too
        defaults = config.defaults
        deadline = convert.deadline_from(context.time_remaining(), defaults.deadline_ms, defaults.max_deadline_ms)
        domain = embed_convert.embed_request_from_proto(request, tenant=tenant, deadline=deadline)
        result = await self.daemon.engine.embed(domain)
        if result.outcome.status is OutcomeStatus.DEADLINE_EXCEEDED:
            _answerable(result.outcome)
        return embed_convert.embed_result_to_proto(result)

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        config = self.daemon.config
        return convert.models_to_proto(config.catalog, config.providers, request)

    async def ReportOutcome(
        self, request: pb.ReportOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportOutcomeResponse:
        if self.stats is None:
            raise NotImplementedError("ReportOutcome needs the ledger, which this daemon does not run")
        tenant = self.report_scope() if self.report_scope is not None else None
        return await self.stats.report(request, tenant)

    async def GetStats(self, request: pb.GetStatsRequest, context: grpc.aio.ServicerContext) -> pb.GetStatsResponse:
        if self.stats_scope is not None:
            request.tenant = self.stats_scope(request.tenant)
        if self.stats is None:
            raise NotImplementedError("GetStats needs the ledger, which this daemon does not run")
        resp = await self.stats.stats(request)
        resp.policy_version = self.daemon.config.version
        if self.operator():  # the reload error names the policy file's path: operators only
            resp.config_error = self.daemon.config_error or ""
        return resp


def _replay_memo(daemon: Daemon) -> ReplayMemo | None:
    cache = daemon.cache
    if cache is None:  # not ``store.available``: it waits for the shards, which open while the daemon starts
        return None  # (a store that cannot open has no hits, so its memo never remembers a request)
    return ReplayMemo(daemon.engine, cache.layer)


def _group_keys(daemon: Daemon) -> GroupKeys | None:
    """A worker of a group asks the group's keys too; a daemon on its own never loads the group's link."""
    if daemon.group is None:
        return None
    from policyd.workers.link import GroupIdempotency

    return GroupIdempotency(daemon.group)
