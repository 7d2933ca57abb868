"""A worker's side of the group: die with the supervisor, draw shared state through it.

The supervisor starts each worker with one end of a Unix socket pair (``POLICYD_GROUP_FD``).
Over it the worker says when it serves, draws its tenants' rate limits and budgets and claims
idempotency keys (:mod:`policyd.workers.state`), and answers the supervisor's calls: commit the
queued ledger rows (another worker's GetStats is about to read), the group is (not) serving.
``PR_SET_PDEATHSIG`` and the socket's end of file both tell a worker its supervisor is gone.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from policyd.config.model import Config
from policyd.engine import tokens
from policyd.engine.ratelimit import refused, spent_tokens
from policyd.engine.turn import Turn
from policyd.errors import Unavailable
from policyd.ledger.budgets import BudgetLayer, recorded_usd_from
from policyd.ledger.wiring import LedgerParts
from policyd.plugin.specs import BudgetLine, BudgetRefusal
from policyd.types import Outcome
from policyd.v1 import policyd_pb2 as pb
from policyd.workers.env import FD_ENV, INDEX_ENV, PARENT_ENV
from policyd.workers.peer import Message, Peer, PeerGone

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
LOCAL_STORE = "local"


def die_with_parent(parent: int) -> None:
    """SIGTERM this process when the supervisor exits, even by kill -9 (Linux); exit now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        raise SystemExit("policyd worker: the supervisor exited before this worker started")


@dataclass
class GroupLink:
    """This worker's link to its supervisor; its parts stand in for one daemon's in-memory state."""

    index: int
    sock: socket.socket
    peer: Peer | None = None
    flush: Callable[[], Awaitable[None]] | None = None
    """Commit this worker's queued ledger rows (set once the daemon is built)."""
    on_serving: Callable[[bool], Awaitable[None]] | None = None
    """Set the health of this worker's server to the group's (serving or not)."""
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    def from_environment(cls) -> GroupLink | None:
        """The link a supervisor handed this process, or None (a daemon on its own)."""
        fd = os.environ.get(FD_ENV)
        if not fd:
            return None
        die_with_parent(int(os.environ.get(PARENT_ENV, "0")))
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a forwarded reload before the handler: it loads the file anyway
        sock = socket.socket(fileno=int(fd))
        index = int(os.environ.get(INDEX_ENV, "0") or 0)
        for name in (FD_ENV, INDEX_ENV, PARENT_ENV):  # nothing this worker starts inherits them
            os.environ.pop(name, None)
        return cls(index=index, sock=sock)

    async def start(self) -> None:
        self.peer = await Peer.open(self.sock, self._handle)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.peer is not None
        await self.peer.run()
        self.gone.set()

    def _handle(self, op: str, msg: Message) -> Awaitable[Message] | None:
        if op == "flush":
            return self._flush()
        if op == "serving":
            return self._serving(bool(msg["serving"]))
        raise ValueError(f"unknown call {op!r} from the supervisor")

    async def _flush(self) -> Message:
        if self.flush is not None:
            await self.flush()
        return {}

    async def _serving(self, serving: bool) -> Message:
        if self.on_serving is not None:
            await self.on_serving(serving)
        return {}

    def ready(self, **info: Any) -> None:
        """Tell the supervisor this worker serves (its address, policy and version)."""
        self._peer().notify("ready", pid=os.getpid(), **info)

    def _peer(self) -> Peer:
        if self.peer is None or self.peer.closed.is_set():
            raise Unavailable(
                "this worker's supervisor is gone (the worker is shutting down)", reason="GROUP_UNAVAILABLE"
            )
        return self.peer

    async def call(self, op: str, **args: Any) -> Message:
        try:
            return await self._peer().call(op, **args)
        except PeerGone:
            raise Unavailable(
                "this worker's supervisor is gone (the worker is shutting down)", reason="GROUP_UNAVAILABLE"
            ) from None

    def notify(self, op: str, **args: Any) -> None:
        with contextlib.suppress(PeerGone, Unavailable):
            self._peer().notify(op, **args)

    async def flush_group(self) -> None:
        """Every other worker commits its queued ledger rows (this one flushes its own)."""
        await self.call("flush")

    async def aclose(self) -> None:
        if self.peer is not None:
            await self.peer.aclose()
        if self._reader is not None:
            self._reader.cancel()


class GroupRateLimiter:
    """The ``rate-limit`` step drawing from the supervisor's buckets: one tenant, one limit, N workers."""

    def __init__(self, link: GroupLink) -> None:
        self.link = link

    async def __call__(self, turn: Turn) -> Callable[[Outcome | None], None] | None:
        request = turn.request
        rate = turn.config.raw.limits.rate_for(request.tenant)
        if rate.requests_per_minute is None and rate.tokens_per_minute is None:
            return None  # no limit: no round trip
        estimate = tokens.input_tokens(request.messages, request.tools)
        answer = await self.link.call(
            "rate", tenant=request.tenant, rpm=rate.requests_per_minute, tpm=rate.tokens_per_minute, estimate=estimate
        )
        if "limit" in answer:
            raise refused(request.tenant, answer["limit"], float(answer["wait_s"]))
        if rate.tokens_per_minute is None:
            return None

        def settle(outcome: Outcome | None) -> None:
            if outcome is not None:  # a failed request keeps its reservation spent, as one daemon does
                more = spent_tokens(outcome) - estimate
                if more:
                    self.link.notify("rate_settle", tenant=request.tenant, more=more)

        return settle


class GroupBudgetStore:
    """The ``local`` budget store, kept once by the supervisor for every worker (a BudgetStore)."""

    def __init__(self, link: GroupLink, recorded_usd: Callable[[BudgetLine], Awaitable[float]]) -> None:
        self.link = link
        self.recorded_usd = recorded_usd

    async def reserve(self, lines: Sequence[BudgetLine], usd: float) -> BudgetRefusal | None:
        wire = [[line.key, line.limit_usd, line.period_end] for line in lines]
        answer = await self.link.call("reserve", lines=wire, usd=usd)
        if answer.get("seed"):  # first sight of a line: what the group's ledger recorded in its period
            seeds = [await self.recorded_usd(line) for line in lines]
            answer = await self.link.call("reserve", lines=wire, usd=usd, seeds=seeds)
        if "refused" in answer:
            line = lines[int(answer["refused"])]
            return BudgetRefusal(line=line, spent_usd=float(answer["spent"]), reserved_usd=float(answer["reserved"]))
        return None

    async def settle(self, lines: Sequence[BudgetLine], reserved_usd: float, spent_usd: float) -> None:
        self.link.notify("settle", keys=[line.key for line in lines], reserved=reserved_usd, spent=spent_usd)

    async def aclose(self) -> None:
        return None


class GroupIdempotency:
    """The group's idempotency keys (``policyd.server.idempotency.GroupKeys``)."""

    def __init__(self, link: GroupLink) -> None:
        self.link = link

    async def claim(
        self, tenant: str, request_id: str, fingerprint: bytes, window_s: float, max_keys: int
    ) -> pb.CompleteResponse | bool | None:
        answer = await self.link.call(
            "claim",
            tenant=tenant,
            request_id=request_id,
            fingerprint=fingerprint.hex(),
            window_s=window_s,
            max_keys=max_keys,
        )
        if answer.get("owner"):
            return True
        if answer.get("conflict"):
            return False
        if "answer" in answer:
            return pb.CompleteResponse.FromString(base64.b64decode(answer["answer"]))
        return None

    def answer(self, tenant: str, request_id: str, response: pb.CompleteResponse | None) -> None:
        text = base64.b64encode(response.SerializeToString()).decode() if response is not None else None
        self.link.notify("answer", tenant=tenant, request_id=request_id, answer=text)


def share_with_group(link: GroupLink, config: Config, parts: LedgerParts) -> Any:
    """Point one worker's parts at the group: returns the ``rate-limit`` step; swaps a ``local`` budget
    store for the group's (another kind is shared, or not, by its own design) and links ledger flushes."""
    ledger = parts.ledger
    if ledger is not None:
        ledger.peers = link.flush_group
        link.flush = ledger.flush
    budgets = config.raw.budgets
    if parts.budgets is not None and budgets is not None and budgets.store.kind == LOCAL_STORE:
        spent = ledger.spent if ledger is not None else _nothing_recorded
        parts.budgets = BudgetLayer(GroupBudgetStore(link, recorded_usd_from(spent)), kind=LOCAL_STORE)
    return GroupRateLimiter(link)


async def _nothing_recorded(**_: object) -> float:
    return 0.0
