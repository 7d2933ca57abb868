"""The group's shared state, hosted by the supervisor: what one daemon keeps in memory, kept once.

Every worker draws from the same rate-limit buckets (:class:`~policyd.engine.ratelimit.TenantRateLimiter`,
the same code as one daemon), the same budget counters (the ``local`` store's check-and-add) and the
same idempotency keys. Each call is handled without awaiting, on the supervisor's one event loop,
so two workers can never both take the last token or the last dollar. A worker that dies
releases its budget reservations (its requests ended with it) and its idempotency claims.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policyd.errors import ResourceExhausted
from policyd.workers.peer import Message, Peer, PeerGone

if TYPE_CHECKING:
    from policyd.engine.ratelimit import TenantRateLimiter

log = logging.getLogger(__name__)

EPSILON_USD = 1e-12
FLUSH_TIMEOUT_S = 5.0


@dataclass
class _Key:
    """One idempotency key: its request's fingerprint, its owner, the answer once known."""

    fingerprint: str
    owner: int
    expires: float
    answer: str | None = None
    waiters: list[asyncio.Future[str | None]] = field(default_factory=list)


class GroupState:
    """Rate limits, budgets, idempotency keys and ledger flushes for a group of workers."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.peers: dict[int, Peer] = {}
        """Live workers' links, by incarnation (each start of a worker has its own number)."""
        self._limiter: TenantRateLimiter | None = None
        self.spent: dict[str, float] = {}
        self.reserved: dict[str, float] = {}
        self.ends: dict[str, float] = {}
        self.holds: dict[int, Counter[tuple[tuple[str, ...], float]]] = {}
        self.keys: OrderedDict[tuple[str, str], _Key] = OrderedDict()

    @property
    def limiter(self) -> TenantRateLimiter:
        """The tenants' buckets, made at the first rate-limited request (the supervisor starts light)."""
        if self._limiter is None:
            from policyd.engine.ratelimit import TenantRateLimiter

            self._limiter = TenantRateLimiter(self.clock)
        return self._limiter

    def handler(self, worker: int) -> Callable[[str, Message], Any]:
        def handle(op: str, msg: Message) -> Any:
            if op == "rate":
                return self.rate(msg)
            if op == "rate_settle":
                self.limiter.adjust(msg["tenant"], float(msg["more"]))
                return None
            if op == "reserve":
                return self.reserve(worker, msg)
            if op == "settle":
                self.settle(worker, msg)
                return None
            if op == "claim":
                return self.claim(worker, msg)
            if op == "answer":
                self.answer(msg)
                return None
            if op == "flush":
                return self.flush_others(worker)
            raise ValueError(f"unknown group call {op!r}")

        return handle

    # ------------------------------------------------------------ rate limits

    def rate(self, msg: Message) -> Message:
        try:
            self.limiter.draw(msg["tenant"], msg.get("rpm"), msg.get("tpm"), int(msg["estimate"]))
        except ResourceExhausted as exc:
            return {"limit": exc.metadata.get("limit", ""), "wait_s": exc.retry_after_s or 0.0}
        return {}

    # ------------------------------------------------------------ budgets

    def reserve(self, worker: int, msg: Message) -> Message:
        """``lines``: [[key, limit_usd, period_end], ...]; ``seeds`` (USD recorded per line) when asked for."""
        lines: list[list[Any]] = msg["lines"]
        usd = float(msg["usd"])
        seeds: list[float] | None = msg.get("seeds")
        if any(key not in self.spent for key, _, _ in lines):
            if seeds is None:
                return {"seed": True}  # the worker reads its ledger (the whole group's) and asks again
            self._forget_ended()
            for (key, _, end), seed in zip(lines, seeds, strict=True):
                if key not in self.spent:
                    self.spent[key], self.reserved[key], self.ends[key] = float(seed), 0.0, float(end)
        for i, (key, limit, _) in enumerate(lines):
            spent, reserved = self.spent[key], self.reserved[key]
            if spent + reserved + usd > float(limit) + EPSILON_USD:
                return {"refused": i, "spent": spent, "reserved": reserved}
        for key, _, _ in lines:
            self.reserved[key] += usd
        self.holds.setdefault(worker, Counter())[(tuple(key for key, _, _ in lines), usd)] += 1
        return {}

    def settle(self, worker: int, msg: Message) -> None:
        keys, reserved, spent = tuple(msg["keys"]), float(msg["reserved"]), float(msg["spent"])
        holds = self.holds.get(worker)
        if holds is not None and holds[(keys, reserved)] > 0:
            holds[(keys, reserved)] -= 1
        for key in keys:
            if key in self.spent:
                self.reserved[key] = max(0.0, self.reserved[key] - reserved)
                self.spent[key] += spent

    def _forget_ended(self) -> None:
        now = time.time()
        for key in [k for k, end in self.ends.items() if end <= now and not self.reserved.get(k)]:
            self.spent.pop(key, None)
            self.reserved.pop(key, None)
            self.ends.pop(key, None)

    # ------------------------------------------------------------ idempotency keys

    def claim(self, worker: int, msg: Message) -> Message | Awaitable[Message]:
        """``owner`` runs the request; a duplicate gets the first answer (now or when it lands);
        ``conflict`` for the same id with another request within the window."""
        key = (msg["tenant"], msg["request_id"])
        entry = self._live(key)
        if entry is None:
            self._remember(
                key, _Key(msg["fingerprint"], worker, self.clock() + float(msg["window_s"])), int(msg["max_keys"])
            )
            return {"owner": True}
        if entry.fingerprint != msg["fingerprint"]:
            return {"conflict": True}
        if entry.answer is not None:
            return {"answer": entry.answer}
        waiter: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        entry.waiters.append(waiter)
        return self._await_answer(waiter)

    async def _await_answer(self, waiter: asyncio.Future[str | None]) -> Message:
        answer = await waiter
        return {"answer": answer} if answer is not None else {"retry": True}

    def answer(self, msg: Message) -> None:
        """The owner's answer (base64 protobuf), or none: it failed, so the key is forgotten and duplicates run."""
        key = (msg["tenant"], msg["request_id"])
        entry = self.keys.get(key)
        if entry is None:
            return
        answer: str | None = msg.get("answer")
        if answer is None:
            del self.keys[key]
        else:
            entry.answer = answer
        for waiter in entry.waiters:
            if not waiter.done():
                waiter.set_result(answer)
        entry.waiters.clear()

    def _live(self, key: tuple[str, str]) -> _Key | None:
        entry = self.keys.get(key)
        if entry is not None and entry.expires <= self.clock():
            del self.keys[key]
            return None
        return entry

    def _remember(self, key: tuple[str, str], entry: _Key, max_keys: int) -> None:
        now = self.clock()
        while self.keys:
            oldest_key, oldest = next(iter(self.keys.items()))
            if oldest.expires > now and len(self.keys) < max_keys:
                break
            del self.keys[oldest_key]
        self.keys[key] = entry

    # ------------------------------------------------------------ ledger

    async def flush_others(self, worker: int) -> Message:
        """Every other worker commits its queued ledger rows: a GetStats or a report then sees the group's."""
        others = [peer for index, peer in self.peers.items() if index != worker]
        if others:
            try:
                results = await asyncio.wait_for(
                    asyncio.gather(*(peer.call("flush") for peer in others), return_exceptions=True), FLUSH_TIMEOUT_S
                )
            except TimeoutError:  # a stuck worker must not fail the read: it sees what is committed
                log.warning("a worker did not flush its ledger within %.0f s", FLUSH_TIMEOUT_S)
                return {}
            for result in results:
                if isinstance(result, Exception) and not isinstance(result, PeerGone):
                    log.warning("a worker failed to flush its ledger: %s", result)
        return {}

    # ------------------------------------------------------------ workers

    def attach(self, worker: int, peer: Peer) -> None:
        self.peers[worker] = peer

    def detach(self, worker: int) -> None:
        """A worker exited: its reservations and unanswered claims end with its requests."""
        self.peers.pop(worker, None)
        released = 0
        for (keys, usd), count in (self.holds.pop(worker, None) or Counter()).items():
            for key in keys:
                if key in self.reserved:
                    self.reserved[key] = max(0.0, self.reserved[key] - usd * count)
            released += count
        if released:
            log.warning("a worker exited with %d budget reservation(s) in flight: released", released)
        for (tenant, request_id), entry in list(self.keys.items()):
            if entry.owner == worker and entry.answer is None:
                self.answer({"tenant": tenant, "request_id": request_id})
