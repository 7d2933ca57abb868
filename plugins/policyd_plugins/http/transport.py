"""One pooled keep-alive client per provider instance, with phase timeouts and error classes.

Whole-JSON POSTs and event streams both go through :class:`~policyd_plugins.http.lean.LeanClient`.
Every request runs under two clocks: the **total** (the instance's ``total_s`` cut to
the call's remaining time) and a **phase** clock: ``first_byte_s`` until the first
byte of the body arrives, then ``between_chunks_s`` between reads (:mod:`~policyd_plugins.http.clock`:
one timer for all of a transport's requests). ``connect_s`` bounds
opening a connection. Whatever goes wrong leaves as an
:class:`~policyd.errors.UpstreamError` naming the phase, never a bare socket error,
and a cancelled request (or a stream its caller left) closes its connection, so the
upstream sees the abort.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

from policyd.api import UpstreamError, inject_headers
from policyd_plugins.http.classify import classify_status, malformed
from policyd_plugins.http.clock import Clock, Watch
from policyd_plugins.http.lean import (
    BadHeader,
    BadHttp,
    BodyTooLarge,
    CannotConnect,
    ConnectTimeout,
    Disconnected,
    LeanClient,
)
from policyd_plugins.http.secrets import ApiKey
from policyd_plugins.http.settings import HttpSettings
from policyd_plugins.http.sse import SseDecoder, SseEvent

T = TypeVar("T")


class HttpTransport:
    def __init__(self, provider: str, settings: HttpSettings, key: ApiKey | None = None) -> None:
        self.provider = provider
        self.settings = settings
        self.key = key
        self.host = urlsplit(settings.base_url).netloc
        self._lean: LeanClient | None = None
        self._watch: Watch | None = None

    async def aclose(self) -> None:
        if self._lean is not None:
            self._lean.close()
            self._lean = None
        if self._watch is not None:
            if not self._watch.clocks:  # requests still in flight keep their clocks to the end
                self._watch.close()
            self._watch = None

    def _redact(self, text: str) -> str:
        return self.key.redact(text) if self.key is not None else text

    def _clock(self, call_timeout_s: float | None) -> Clock:
        """A request's clocks: the total cut to the call's remaining time (``call_timeout_s``)."""
        t = self.settings.timeouts
        total = t.total_s if call_timeout_s is None else max(0.0, min(t.total_s, call_timeout_s))
        loop = asyncio.get_running_loop()
        watch = self._watch
        if watch is None or watch.loop is not loop:
            watch = self._watch = Watch(loop)
        return Clock(watch, total, t.first_byte_s, t.between_chunks_s)

    # ------------------------------------------------------------ requests

    async def post_json(
        self,
        url: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        timeout_s: float | None,
        loads: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """POST ``body`` as JSON and return the answer parsed by ``loads`` (any ValueError is malformed).

        One coroutine over the lean client's one: the clocks are started and stopped around its
        ``post`` here (what :meth:`_clocked` does for a stream, without its two frames)."""
        data, send = _request(body, headers)
        clock = self._clock(timeout_s)
        lean = self._lean or self.lean()
        clock.start()
        try:
            resp = await lean.post(url, data, send, limit=self.settings.max_body_bytes, got_bytes=clock.got_bytes)
        except BaseException as exc:
            error = self._failed(exc, clock)
            if error is None:
                raise
            raise error from None
        clock.stop()
        raw = resp.body
        if resp.status >= 400:
            raise classify_status(self.provider, resp.status, raw, resp.headers, redact=self._redact)
        try:
            return (loads or json_loads)(raw)
        except ValueError:
            raise malformed(self.provider, f"body is not JSON ({len(raw)} bytes)") from None

    def lean(self) -> LeanClient:
        """The keep-alive pool, made on first use inside the running event loop."""
        if self._lean is None:
            s = self.settings
            self._lean = LeanClient(s.base_url, pool_size=s.pool_size, connect_s=s.timeouts.connect_s)
        return self._lean

    async def post_sse(
        self,
        url: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        timeout_s: float | None,
        on_event: Callable[[SseEvent], object],
    ) -> None:
        """POST ``body`` and hand each server-sent event to ``on_event`` as it arrives.

        ``on_event`` returns true when the event relayed answer text to the caller: the first
        such event of a read, and the read's last ones, are followed by one turn of the event
        loop, so the caller's stream sends them before the next events are parsed. A read that
        finds a burst already buffered returns without suspending; without the turn, the first
        token would wait for the whole burst (and the end of the answer) to be handled.
        """
        data, send = _request(body, {**headers, "Accept": "text/event-stream"})

        async def read(clock: Clock) -> None:
            async with self.lean().stream(url, data, send) as resp:
                if resp.status >= 400:
                    raw = await resp.read_all(64 * 1024, clock.got_bytes)
                    raise classify_status(self.provider, resp.status, raw, resp.headers, redact=self._redact)
                ctype = resp.headers.get("content-type", "")
                if not ctype.startswith("text/event-stream"):
                    raw = await resp.read_all(self.settings.max_body_bytes, clock.got_bytes)
                    raise malformed(
                        self.provider, f"expected text/event-stream, got {ctype or 'no type'} ({len(raw)} bytes)"
                    )
                decoder = SseDecoder(self.settings.max_body_bytes)
                while chunk := await resp.read():
                    clock.got_bytes()
                    await _relay(self._events(decoder, chunk), on_event)
                await _relay(decoder.close(), on_event)

        await self._clocked(timeout_s, read)

    def _events(self, decoder: SseDecoder, chunk: bytes) -> Iterator[SseEvent]:
        try:
            yield from decoder.events(chunk)
        except ValueError as exc:
            raise malformed(self.provider, str(exc)) from None

    async def _clocked(self, timeout_s: float | None, run: Callable[[Clock], Awaitable[T]]) -> T:
        """``run(clock)`` under the total and phase clocks; the lean client's failures become
        :class:`UpstreamError`\\ s naming the phase (an ``UpstreamError`` raised by ``run`` passes as is)."""
        clock = self._clock(timeout_s)
        clock.start()
        try:
            result = await run(clock)
        except BaseException as exc:
            error = self._failed(exc, clock)
            if error is None:
                raise
            raise error from None
        clock.stop()
        return result

    def _failed(self, exc: BaseException, clock: Clock) -> UpstreamError | None:
        """Stops ``clock``; the :class:`UpstreamError` that a request's failure ``exc`` stands for,
        or None when ``exc`` leaves as it is (a cancel from outside, an ``UpstreamError``, a bug)."""
        timed_out = clock.stop()
        t = self.settings.timeouts
        if isinstance(exc, asyncio.CancelledError):
            if not timed_out:
                return None
            if clock.phase is None:
                return self._error(f"no complete answer within {clock.total_s:.3g} s (total timeout)")
            return self._error(clock.phase)
        if isinstance(exc, ConnectTimeout):
            return self._error(f"could not connect to {self.host} within {t.connect_s:g} s")
        if isinstance(exc, Disconnected):
            if exc.cut:
                return self._error(f"the response body from {self.host} was cut short")
            return self._error(f"{self.host} closed the connection before answering in full")
        if isinstance(exc, BodyTooLarge):
            return malformed(self.provider, f"body larger than {self.settings.max_body_bytes} bytes")
        if isinstance(exc, BadHttp):
            return malformed(self.provider, f"invalid HTTP from {self.host}: {self._redact(str(exc))}")
        if isinstance(exc, BadHeader):
            return UpstreamError(self.provider, f"request header {exc} holds a line break", retryable=False)
        if isinstance(exc, CannotConnect):
            return self._error(f"cannot connect to {self.host}: {exc}")
        if isinstance(exc, OSError):  # a socket's own ETIMEDOUT (TimeoutError) included
            return self._error(f"connection to {self.host} failed: {exc.strerror or type(exc).__name__}")
        return None

    def _error(self, message: str) -> UpstreamError:
        return UpstreamError(self.provider, message, retryable=True)


async def _relay(events: Iterable[SseEvent], on_event: Callable[[SseEvent], object]) -> None:
    """Hand ``events`` to ``on_event``, yielding to the loop after the first that relayed text and at the end."""
    first, pending = True, False
    for event in events:
        if on_event(event):
            if first:
                first = False
                await asyncio.sleep(0)
            else:
                pending = True
    if pending:
        await asyncio.sleep(0)


def json_loads(raw: bytes) -> Any:
    """``json.loads`` at orjson's speed: orjson reads a provider's answer in ~1 µs against ~6 µs.

    What orjson refuses and the stdlib reads (``NaN``/``Infinity``, integers past 64 bits, a
    UTF-16 or UTF-32 body, a BOM) goes to ``json.loads``, so every body parses as it always did."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def _request(body: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
    """The JSON body and the headers of a POST, with the W3C traceparent of the model-call span
    (the upstream call joins the trace): the same for whole-JSON POSTs and streams."""
    send = {"Content-Type": "application/json", **headers}
    inject_headers(send)
    return orjson.dumps(body), send  # compact UTF-8, as json.dumps(ensure_ascii=False) with tight separators
