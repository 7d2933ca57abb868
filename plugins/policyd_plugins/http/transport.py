"""One pooled aiohttp session per provider instance, with phase timeouts and error classes.

Every request runs under two clocks: the **total** (the instance's ``total_s`` cut to
the call's remaining time) and a **phase** clock: ``first_byte_s`` until the first
byte of the body arrives, then ``between_chunks_s`` between reads. ``connect_s`` bounds
opening a connection. Whatever goes wrong leaves as an
:class:`~policyd.errors.UpstreamError` naming the phase, never a bare aiohttp error,
and a cancelled request closes its connection, so the upstream sees the abort.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

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

READ_SIZE = 64 * 1024


class _Clock:
    """The phase clock: which phase the request is in and when it must end."""

    def __init__(self, timeout: asyncio.Timeout, first_byte_s: float, between_s: float) -> None:
        self.timeout = timeout
        self.between_s = between_s
        self.phase = f"no response within {first_byte_s:g} s"
        self._loop = asyncio.get_running_loop()
        timeout.reschedule(self._loop.time() + first_byte_s)

    def got_bytes(self) -> None:
        self.phase = f"stalled for {self.between_s:g} s between chunks"
        self.timeout.reschedule(self._loop.time() + self.between_s)


class HttpTransport:
    def __init__(self, provider: str, settings: HttpSettings, key: ApiKey | None = None) -> None:
        self.provider = provider
        self.settings = settings
        self.key = key
        self.host = urlsplit(settings.base_url).netloc
        self._session: aiohttp.ClientSession | None = None
        self._lean: LeanClient | None = None

    def session(self) -> aiohttp.ClientSession:
        """The shared session, created on first use inside the running event loop."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.settings.pool_size, limit_per_host=self.settings.pool_size, keepalive_timeout=30
            )
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.timeouts.connect_s)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, raise_for_status=False)
        return self._session

    async def aclose(self) -> None:
        if self._lean is not None:
            self._lean.close()
            self._lean = None
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

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
        loads: Callable[[bytes], Any] = json.loads,
    ) -> Any:
        """POST ``body`` as JSON and return the answer parsed by ``loads`` (any ValueError is malformed)."""

        raw = await self._post_lean(url, body, headers, timeout_s)
        try:
            return loads(raw)
        except ValueError:
            raise malformed(self.provider, f"body is not JSON ({len(raw)} bytes)") from None

    def lean(self) -> LeanClient:
        """The keep-alive pool of whole-body POSTs, made on first use inside the running event loop."""
        if self._lean is None:
            s = self.settings
            self._lean = LeanClient(s.base_url, pool_size=s.pool_size, connect_s=s.timeouts.connect_s)
        return self._lean

    async def _post_lean(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], timeout_s: float | None
    ) -> bytes:
        """POST through :class:`LeanClient`, under the same clocks and error classes as the aiohttp path."""
        total_s = self._total(timeout_s)
        t = self.settings.timeouts
        data, send = _request(body, headers)
        clock: _Clock | None = None
        try:
            async with asyncio.timeout(total_s) as total, asyncio.timeout(None) as phase:
                clock = _Clock(phase, t.first_byte_s, t.between_chunks_s)
                resp = await self.lean().post(
                    url, data, send, limit=self.settings.max_body_bytes, got_bytes=clock.got_bytes
                )
        except TimeoutError:
            if total.expired() or clock is None:
                raise self._error(f"no complete answer within {total_s:.3g} s (total timeout)") from None
            raise self._error(clock.phase) from None
        except ConnectTimeout:
            raise self._error(f"could not connect to {self.host} within {t.connect_s:g} s") from None
        except Disconnected as exc:
            if exc.cut:
                raise self._error(f"the response body from {self.host} was cut short") from None
            raise self._error(f"{self.host} closed the connection before answering in full") from None
        except BodyTooLarge:
            raise malformed(self.provider, f"body larger than {self.settings.max_body_bytes} bytes") from None
        except BadHttp as exc:
            raise malformed(self.provider, f"invalid HTTP from {self.host}: {self._redact(str(exc))}") from None
        except BadHeader as exc:
            raise UpstreamError(self.provider, f"request header {exc} holds a line break", retryable=False) from None
        except CannotConnect as exc:
            raise self._error(f"cannot connect to {self.host}: {exc}") from None
        except OSError as exc:
            raise self._error(f"connection to {self.host} failed: {exc.strerror or type(exc).__name__}") from None
        if resp.status >= 400:
            raise classify_status(self.provider, resp.status, resp.body, resp.headers, redact=self._redact)
        return resp.body

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

        async def read(resp: aiohttp.ClientResponse, clock: _Clock) -> None:
            ctype = resp.headers.get("Content-Type", "")
            if not ctype.startswith("text/event-stream"):
                raw = await self._read_body(resp, clock)
                raise malformed(
                    self.provider, f"expected text/event-stream, got {ctype or 'no type'} ({len(raw)} bytes)"
                )
            decoder = SseDecoder(self.settings.max_body_bytes)
            while True:
                chunk = await resp.content.readany()
                if not chunk:
                    break
                clock.got_bytes()
                try:
                    events = decoder.feed(chunk)
                except ValueError as exc:
                    raise malformed(self.provider, str(exc)) from None
                await _relay(events, on_event)
            await _relay(decoder.close(), on_event)

        await self._request(url, body, {**headers, "Accept": "text/event-stream"}, timeout_s, read)

    async def _request(
        self,
        url: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        timeout_s: float | None,
        read: Callable[[aiohttp.ClientResponse, _Clock], Any],
    ) -> Any:
        total_s = self._total(timeout_s)
        t = self.settings.timeouts
        data, send = _request(body, headers)
        clock: _Clock | None = None
        try:
            async with asyncio.timeout(total_s) as total, asyncio.timeout(None) as phase:
                clock = _Clock(phase, t.first_byte_s, t.between_chunks_s)
                async with self.session().post(url, data=data, headers=send) as resp:
                    try:
                        if resp.status >= 400:
                            raw = await self._read_body(resp, clock, limit=64 * 1024)
                            raise classify_status(self.provider, resp.status, raw, resp.headers, redact=self._redact)
                        return await read(resp, clock)
                    except BaseException:
                        resp.close()  # never hand a half-read connection back to the pool
                        raise
        except UpstreamError:
            raise
        except aiohttp.ConnectionTimeoutError:
            raise self._error(f"could not connect to {self.host} within {t.connect_s:g} s") from None
        except TimeoutError:
            if total.expired() or clock is None:
                raise self._error(f"no complete answer within {total_s:.3g} s (total timeout)") from None
            raise self._error(clock.phase) from None
        except aiohttp.ClientConnectorError as exc:
            raise self._error(f"cannot connect to {self.host}: {exc.strerror or type(exc).__name__}") from None
        except aiohttp.ServerDisconnectedError:
            raise self._error(f"{self.host} closed the connection before answering in full") from None
        except aiohttp.ClientPayloadError:
            raise self._error(f"the response body from {self.host} was cut short") from None
        except aiohttp.InvalidURL:
            raise UpstreamError(self.provider, f"invalid URL for {self.host}", retryable=False) from None
        except (aiohttp.ClientOSError, ConnectionError) as exc:
            raise self._error(f"connection to {self.host} failed: {exc.strerror or type(exc).__name__}") from None
        except aiohttp.ClientResponseError as exc:
            raise malformed(self.provider, f"invalid HTTP from {self.host}: {self._redact(exc.message)}") from None
        except aiohttp.ClientError as exc:
            raise self._error(f"request to {self.host} failed: {type(exc).__name__}") from None

    def _error(self, message: str) -> UpstreamError:
        return UpstreamError(self.provider, message, retryable=True)

    async def _read_body(self, resp: aiohttp.ClientResponse, clock: _Clock, limit: int | None = None) -> bytes:
        cap = limit or self.settings.max_body_bytes
        parts: list[bytes] = []
        size = 0
        while True:
            chunk = await resp.content.readany()
            if not chunk:
                return b"".join(parts)
            clock.got_bytes()
            size += len(chunk)
            if size > cap:
                if limit is not None:
                    return b"".join(parts)  # an error body: its start says enough
                raise malformed(self.provider, f"body larger than {cap} bytes")
            parts.append(chunk)


async def _relay(events: list[SseEvent], on_event: Callable[[SseEvent], object]) -> None:
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


def _request(body: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
    """The JSON body and the headers of a POST, with the W3C traceparent of the model-call span
    (the upstream call joins the trace): the same for the lean client and aiohttp."""
    send = {"Content-Type": "application/json", **headers}
    inject_headers(send)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), send
