"""Caller-set request ids as idempotency keys, per tenant, for a configurable window.

The same ``request_id`` with the same request (every field but the id, byte for byte in
deterministic protobuf encoding) answers the first response again, marked ``replayed``: no
upstream call, no new charge, no second ledger row. The same id with a different request is
ALREADY_EXISTS (``REQUEST_ID_REUSED``). A duplicate that arrives while the first is still
running waits for it. A first request that ends in an error releases its key, so a retry runs
afresh. Keys live in this daemon's memory (``limits.idempotency_window_s``, 0 turns it off;
at most ``limits.idempotency_max_keys``, oldest dropped first): replicas behind a load balancer
each keep their own, as docs/clients.md says. The workers of one ``policyd serve --workers N``
share theirs through the supervisor (:class:`GroupKeys`, ``docs/workers.md``): a retry that lands
on another worker is replayed too.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from policyd.errors import AlreadyExists
from policyd.v1 import policyd_pb2 as pb


def fingerprint(msg: pb.CompleteRequest) -> bytes:
    """What must match for a reused id to be the same request: everything but the id itself."""
    body = pb.CompleteRequest()
    body.CopyFrom(msg)
    body.request_id = ""
    return hashlib.sha256(body.SerializeToString(deterministic=True)).digest()


@dataclass
class _Entry:
    fingerprint: bytes
    answer: asyncio.Future[pb.CompleteResponse]
    expires: float


class GroupKeys(Protocol):
    """The keys of a group of workers (``policyd.workers.link``), asked after this worker's own."""

    async def claim(
        self, tenant: str, request_id: str, fingerprint: bytes, window_s: float, max_keys: int
    ) -> pb.CompleteResponse | bool | None:
        """True: this worker runs the request; False: the id was used for another request;
        a response: the group's first answer to replay; None: the first failed, ask again.
        Waits while another worker runs it."""

    def answer(self, tenant: str, request_id: str, response: pb.CompleteResponse | None) -> None:
        """The owner's answer, or None when it failed (the key is forgotten, duplicates run)."""


class IdempotencyKeys:
    """The daemon's idempotency keys; one instance per server."""

    def __init__(
        self,
        window_s: Callable[[], float],
        max_keys: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
        group: GroupKeys | None = None,
    ) -> None:
        self._window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self.group = group

    def __len__(self) -> int:
        return len(self._entries)

    async def claim(self, tenant: str, msg: pb.CompleteRequest) -> Claim | None:
        """None when ``msg`` is no idempotency key (no caller-set id, or keys are off); else the
        claim: the owner runs the request and settles it, a duplicate awaits :meth:`Claim.replay`.
        Raises ALREADY_EXISTS when the id was used for a different request within the window."""
        window = self._window_s()
        if not msg.request_id or window <= 0:
            return None
        key = (tenant, msg.request_id)
        mark = fingerprint(msg)
        entry = self._live(key)
        if entry is not None:
            if entry.fingerprint != mark:
                raise AlreadyExists(
                    f"request_id {msg.request_id!r} was used for a different request within the last "
                    f"{window:g} s; use a new id for a new request",
                    metadata={"request_id": msg.request_id},
                )
            return Claim(self, key, entry, owner=False)
        entry = _Entry(mark, asyncio.get_running_loop().create_future(), self._clock() + window)
        self._remember(key, entry)
        if self.group is None:
            return Claim(self, key, entry, owner=True)
        return await self._claim_in_group(key, entry, window)

    async def _claim_in_group(self, key: tuple[str, str], entry: _Entry, window: float) -> Claim:
        """This worker holds the key: ask the group whether another worker does (duplicates here wait on it)."""
        assert self.group is not None
        claim = Claim(self, key, entry, owner=True)
        try:
            verdict = None
            while verdict is None:  # None: the first ended in an error on another worker, ask again
                verdict = await self.group.claim(key[0], key[1], entry.fingerprint, window, self._max_keys())
        except BaseException as exc:
            claim.fail(exc, tell_group=False)
            raise
        if verdict is True:
            return claim
        if verdict is False:
            reused = AlreadyExists(
                f"request_id {key[1]!r} was used for a different request within the last "
                f"{window:g} s; use a new id for a new request",
                metadata={"request_id": key[1]},
            )
            claim.fail(reused, tell_group=False)
            raise reused
        entry.answer.set_result(verdict)  # another worker's answer: replayed here, and to duplicates here
        return Claim(self, key, entry, owner=False)

    async def run(
        self,
        tenant: str,
        msg: pb.CompleteRequest,
        first: Callable[[], Awaitable[pb.CompleteResponse]],
    ) -> pb.CompleteResponse:
        """The response for ``msg``: ``first()`` for the owner, the first response (replayed) for a duplicate."""
        claim = await self.claim(tenant, msg)
        if claim is None:
            return await first()
        if not claim.owner:
            answer = await claim.replay()
            return answer if answer is not None else await self.run(tenant, msg, first)
        try:
            response = await first()
        except BaseException as exc:
            claim.fail(exc)
            raise
        claim.settle(response)
        return response

    def _forget(self, key: tuple[str, str], entry: _Entry) -> None:
        if self._entries.get(key) is entry:
            del self._entries[key]

    def _live(self, key: tuple[str, str]) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires <= self._clock():
            del self._entries[key]
            return None
        return entry

    def _remember(self, key: tuple[str, str], entry: _Entry) -> None:
        now = self._clock()
        while self._entries:  # oldest first: expired keys, then the oldest past the cap
            oldest_key, oldest = next(iter(self._entries.items()))
            if oldest.expires > now and len(self._entries) < self._max_keys():
                break
            del self._entries[oldest_key]
        self._entries[key] = entry


@dataclass
class Claim:
    """One request's hold on its key: the owner settles it, duplicates wait for it."""

    keys: IdempotencyKeys
    key: tuple[str, str]
    entry: _Entry
    owner: bool

    def settle(self, response: pb.CompleteResponse) -> None:
        if not self.entry.answer.done():
            self.entry.answer.set_result(response)
        if self.owner and self.keys.group is not None:
            self.keys.group.answer(self.key[0], self.key[1], response)

    def fail(self, exc: BaseException, *, tell_group: bool = True) -> None:
        """A failed or abandoned first request is not remembered: a retry runs afresh. Duplicates
        waiting on it get the same error, or (if it was cancelled) run themselves; those waiting
        on another worker run themselves."""
        self.keys._forget(self.key, self.entry)
        if tell_group and self.owner and self.keys.group is not None:
            self.keys.group.answer(self.key[0], self.key[1], None)
        if self.entry.answer.done():
            return
        if isinstance(exc, Exception):
            self.entry.answer.set_exception(exc)
            self.entry.answer.exception()  # retrieved: no "never retrieved" warning when nobody waits
        else:
            self.entry.answer.cancel()

    async def replay(self) -> pb.CompleteResponse | None:
        """The first response, marked as a replay; None when the first was cancelled (run it yourself)."""
        try:
            response = await asyncio.shield(self.entry.answer)
        except asyncio.CancelledError:
            if self.entry.answer.cancelled():
                return None
            raise  # this duplicate itself was cancelled
        return replayed(response)


def replayed(response: pb.CompleteResponse) -> pb.CompleteResponse:
    """A copy of ``response`` marked as a replay (the original stays as it was)."""
    copy = pb.CompleteResponse()
    copy.CopyFrom(response)
    copy.replayed = True
    return copy


def replay_events(response: pb.CompleteResponse) -> list[pb.StreamCompleteResponse]:
    """A replayed answer as a stream: its attempts, its text as one delta, then the final event."""
    events = [pb.StreamCompleteResponse(attempt=a) for a in response.attempts]
    if response.output.content:
        events.append(pb.StreamCompleteResponse(delta=response.output.content))
    events.append(pb.StreamCompleteResponse(final=response))
    return events
