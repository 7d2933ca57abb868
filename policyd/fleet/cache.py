"""The shared cache tier: answers in Valkey behind each daemon's disk cache, one upstream call per fleet.

A call layer (``shared-cache``) just inside the disk cache's: a disk miss asks Valkey; a
miss there takes a short lock (``SET NX`` with the call's deadline as TTL) so that, of the
identical calls the replicas make at once, one goes upstream and the others wait for its
answer to appear (polling, at most ``cache_wait_ms`` and never past the call's deadline);
if the lock's holder dies, its lock expires and a waiter calls upstream itself.

Entries are the disk cache's JSON (``policyd.cache.codec``: no pickle), repeating their key
and tenant, which are checked on every read; keys are the disk cache's (a hash of
everything that can change the answer, tenant first) under the tenant's hash tag, so
tenants never share an entry. Entries are bounded in size (``cache_max_entry_bytes``) and
lifetime (``cache_max_ttl_s``). Valkey slow or down: the call goes upstream (a cache is
never a reason to refuse), and the next requests skip Valkey for ``retry_after_ms``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from policyd.cache.codec import CorruptEntry, Entry, decode, encode
from policyd.cache.keys import call_key
from policyd.engine.pipeline import CallNext
from policyd.engine.turn import Turn
from policyd.fleet.settings import ValkeySettings
from policyd.fleet.valkey import Guard, StoreDown
from policyd.plugin.specs import DeltaSink
from policyd.types import CacheMode, ModelCall, ModelResponse

log = logging.getLogger(__name__)

UNSTORABLE_FINISH = frozenset({"error", "cancelled"})
POLL_S = 0.02
# KEYS: value, lock. ARGV: token, lock ms. The entry if there is one, else whether this caller took the lock.
GET_OR_LOCK = """
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0, 1} end
return {0, 0}
"""
# KEYS: value, lock. ARGV: entry, ttl ms ('' = nothing to store), token. Store the answer and release the lock.
PUT_AND_RELEASE = """
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""


class SharedCacheLayer:
    """The ``shared-cache`` call layer (L2)."""

    def __init__(self, client: Any, settings: ValkeySettings, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock
        self.guard = Guard(settings, "shared cache 'valkey'")
        self._get_or_lock = client.register_script(GET_OR_LOCK)
        self._put_and_release = client.register_script(PUT_AND_RELEASE)
        self.hits = 0
        self.upstream_calls = 0

    def keys(self, call: ModelCall, key: str) -> tuple[str, str]:
        tenant = hashlib.sha256(call.tenant.encode()).hexdigest()[:16]
        base = f"{self.settings.prefix}:{{c:{tenant}}}:{key}"
        return base, base + ":lock"

    async def __call__(self, turn: Turn, call: ModelCall, on_delta: DeltaSink | None, next_: CallNext) -> ModelResponse:
        if call.cache_mode is not CacheMode.DEFAULT or not self.guard.up:
            return await next_(turn, call, on_delta)
        key = call_key(call)
        value_key, lock_key = self.keys(call, key)
        deadline = turn.request.deadline
        token = uuid.uuid4().hex
        try:
            found, value = await self.guard.run(
                lambda: self._get_or_lock(keys=[value_key, lock_key], args=[token, self._lock_ms(deadline)]), deadline
            )
        except StoreDown:
            return await next_(turn, call, on_delta)
        if found:
            hit = self._decode(value, key, call.tenant)
            if hit is not None:
                return self._reuse(hit, on_delta)
        elif not value:  # another replica is making this call: wait for its answer
            hit = await self._wait(value_key, lock_key, key, call.tenant, deadline)
            if hit is not None:
                return self._reuse(hit, on_delta)
        return await self._fetch(turn, call, on_delta, next_, key, (value_key, lock_key, token))

    # ------------------------------------------------------------ steps

    async def _fetch(
        self,
        turn: Turn,
        call: ModelCall,
        on_delta: DeltaSink | None,
        next_: CallNext,
        key: str,
        keys: tuple[str, str, str],
    ) -> ModelResponse:
        """Call upstream, then store the answer and release the lock in one script (also after a failure)."""
        value_key, lock_key, token = keys
        self.upstream_calls += 1
        data, ttl_ms = b"", 0
        try:
            response = await next_(turn, call, on_delta)
            if response.finish_reason not in UNSTORABLE_FINISH and not response.cached:
                data, ttl_ms = self._entry(key, call, response)
            return response
        finally:
            try:
                await self.guard.run(
                    lambda: self._put_and_release(keys=[value_key, lock_key], args=[data, ttl_ms, token])
                )
            except StoreDown:
                pass  # the lock expires by itself

    def _reuse(self, response: ModelResponse, on_delta: DeltaSink | None) -> ModelResponse:
        self.hits += 1
        if on_delta is not None and response.message.content:
            on_delta(response.message.content)
        return replace(response, cached=True, latency_ms=0.0)

    async def _get(self, value_key: str, key: str, tenant: str, deadline: float | None) -> ModelResponse | None:
        try:
            data = await self.guard.run(lambda: self.client.get(value_key), deadline)
        except StoreDown:
            return None
        return None if data is None else self._decode(data, key, tenant)

    def _decode(self, data: bytes, key: str, tenant: str) -> ModelResponse | None:
        try:
            entry = decode(data, key=key, tenant=tenant)
        except CorruptEntry as exc:
            log.warning("shared cache: dropping a corrupt entry (%s)", exc)
            return None
        return entry.response if entry.expires_at > self.clock() else None

    def _entry(self, key: str, call: ModelCall, response: ModelResponse) -> tuple[bytes, int]:
        """The entry to store and its TTL in ms; (b"", 0) when it is too large to share."""
        now = self.clock()
        ttl = min(call.cache_ttl_s or self.settings.cache_max_ttl_s, self.settings.cache_max_ttl_s)
        entry = Entry(
            key=key, tenant=call.tenant, model=call.model.id, stored_at=now, expires_at=now + ttl, response=response
        )
        data = encode(entry)
        if len(data) > self.settings.cache_max_entry_bytes:
            return b"", 0
        return data, max(1, int(ttl * 1000))

    def _lock_ms(self, deadline: float | None) -> int:
        wait = self.settings.cache_wait_ms / 1000
        if deadline is not None:
            wait = min(wait, max(0.0, deadline - time.monotonic()))
        return max(100, int(wait * 1000))

    async def _wait(
        self, value_key: str, lock_key: str, key: str, tenant: str, deadline: float | None
    ) -> ModelResponse | None:
        """Another replica is calling upstream: its answer, or None when it gave up, died or took too long."""
        end = time.monotonic() + self.settings.cache_wait_ms / 1000
        if deadline is not None:
            end = min(end, deadline)
        while time.monotonic() < end:
            await asyncio.sleep(POLL_S)
            hit = await self._get(value_key, key, tenant, deadline)
            if hit is not None:
                return hit
            try:
                held = await self.guard.run(lambda: self.client.exists(lock_key), deadline)
            except StoreDown:
                return None
            if not held:  # released without an answer (an upstream error), or expired
                return await self._get(value_key, key, tenant, deadline)
        return None
