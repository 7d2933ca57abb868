"""One pooled keep-alive client per provider instance, with phase timeouts and error classes.

Whole-JSON POSTs and event streams both go through :class:`~policyd_plugins.http.lean.LeanClient`.
Every request runs under two clocks: the **total** (the instance's ``total_s`` cut to
the call's remaining time) and a **phase** clock: ``first_byte_s`` until the first
byte of the body arrives, then ``between_chunks_s`` between reads. ``connect_s`` bounds
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


class _Clock:
    """The total and phase clocks of one request, as one timer: ``start()`` it, ``stop()`` it in a
    ``finally``; plain calls, not an ``async with`` (its ``__aenter__``/``__aexit__`` were two more
    coroutines a request).

    ``got_bytes`` moves the phase's deadline (a float), and re-arms the one timer only when
    that deadline comes before it; a timer that fires early re-arms itself, so a stream of
    many small reads costs no timer churn. When a deadline passes, the task is cancelled;
    ``stop`` then says whether the ``CancelledError`` it raised is the clock's own, and
    ``phase`` says which clock ran out (``None``: the total).
    """

    __slots__ = (
        "_armed_at",
        "_cancelling",
        "_handle",
        "_loop",
        "_phase_at",
        "_task",
        "_total_at",
        "between_s",
        "fired",
        "first_byte_s",
        "phase",
    )

    def __init__(self, total_s: float, first_byte_s: float, between_s: float) -> None:
        self._loop = loop = asyncio.get_running_loop()
        now = loop.time()
        self._total_at = now + total_s
        self._phase_at = now + first_byte_s
        self.first_byte_s = first_byte_s
        self.between_s = between_s
        self.phase: str | None = _FIRST_BYTE
        self.fired = False
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Arm the timer for the task running now (call it right before the awaited request)."""
        task = asyncio.current_task(self._loop)
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()
        self._arm(min(self._total_at, self._phase_at))

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = when
        self._handle = self._loop.call_at(when, self._due)

    def stop(self) -> bool:
        """Disarm the timer; True when it fired (the task's cancellation was the clock's: it is
        taken back, and a ``CancelledError`` caught with it means a timeout, not a cancel)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        return self.fired and self._task.uncancel() <= self._cancelling

    def got_bytes(self) -> None:
        if self.phase is not _STALLED:
            self.phase = _STALLED
        self._phase_at = at = self._loop.time() + self.between_s
        if at < self._armed_at and self._handle is not None:
            self._arm(at)

    def _due(self) -> None:
        now = self._loop.time()
        due = min(self._total_at, self._phase_at)
        if now < due:  # the phase moved on since the timer was armed
            self._handle = None
            self._arm(due)
            return
        self._handle = None
        if self._total_at <= now:
            self.phase = None
        elif self.phase is _STALLED:
            self.phase = f"stalled for {self.between_s:g} s between chunks"
        else:
            self.phase = f"no response within {self.first_byte_s:g} s"
        self.fired = True
        self._task.cancel()


_FIRST_BYTE, _STALLED = "first byte", "stalled"
"""``phase`` before and while the body is arriving (its message is made only when the clock runs out)."""


class HttpTransport:
    def __init__(self, provider: str, settings: HttpSettings, key: ApiKey | None = None) -> None:
        self.provider = provider
        self.settings = settings
        self.key = key
        self.host = urlsplit(settings.base_url).netloc
        self._lean: LeanClient | None = None

    async def aclose(self) -> None:
        if self._lean is not None:
            self._lean.close()
            self._lean = None

    def _redact(self, text: str) -> str:
        return self.key.redact(text) if self.key is not None else text

    def _total(self, call_timeout_s: float | None) -> float:
        total = self.settings.timeouts.total_s
        return total if call_timeout_s is None else max(0.0, min(total, call_timeout_s))

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
        total_s = self._total(timeout_s)
        t = self.settings.timeouts
        clock = _Clock(total_s, t.first_byte_s, t.between_chunks_s)
        lean = self._lean or self.lean()
        clock.start()
        try:
            resp = await lean.post(url, data, send, limit=self.settings.max_body_bytes, got_bytes=clock.got_bytes)
        except BaseException as exc:
            error = self._failed(exc, clock, total_s)
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

        async def read(clock: _Clock) -> None:
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

    async def _clocked(self, timeout_s: float | None, run: Callable[[_Clock], Awaitable[T]]) -> T:
        """``run(clock)`` under the total and phase clocks; the lean client's failures become
        :class:`UpstreamError`\\ s naming the phase (an ``UpstreamError`` raised by ``run`` passes as is)."""
        total_s = self._total(timeout_s)
        t = self.settings.timeouts
        clock = _Clock(total_s, t.first_byte_s, t.between_chunks_s)
        clock.start()
        try:
            result = await run(clock)
        except BaseException as exc:
            error = self._failed(exc, clock, total_s)
            if error is None:
                raise
            raise error from None
        clock.stop()
        return result

    def _failed(self, exc: BaseException, clock: _Clock, total_s: float) -> UpstreamError | None:
        """Stops ``clock``; the :class:`UpstreamError` that a request's failure ``exc`` stands for,
        or None when ``exc`` leaves as it is (a cancel from outside, an ``UpstreamError``, a bug)."""
        timed_out = clock.stop()
        t = self.settings.timeouts
        if isinstance(exc, asyncio.CancelledError):
            if not timed_out:
                return None
            if clock.phase is None:
                return self._error(f"no complete answer within {total_s:.3g} s (total timeout)")
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
