"""One pooled Valkey/Redis client per daemon, and the guard every fleet operation goes through.

The client is redis-py's asyncio client (``bench/fleet_clients.py``: as fast as valkey-py,
its parent, and it speaks to Redis OSS and Valkey alike). :class:`Guard` bounds every
operation by ``timeout_ms`` and by what is left of the request's deadline, so a slow or
dead server never holds a request past its deadline; after a failure it skips the server
for ``retry_after_ms`` so the next requests take the configured fail mode at once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from policyd.errors import Unavailable
from policyd.fleet.settings import ValkeySettings

log = logging.getLogger(__name__)

T = TypeVar("T")


def connect(settings: ValkeySettings) -> Any:
    """A pooled asyncio client; the URL and password never reach a log or an error."""
    try:
        import redis.asyncio as redis_asyncio
    except ImportError as exc:  # pragma: no cover - the extra is in the image and in dev
        raise ValueError("fleet.valkey needs the 'redis' package: pip install redis") from exc
    url = settings.url()
    kwargs: dict[str, Any] = {
        "max_connections": settings.max_connections,
        "socket_timeout": settings.timeout_ms / 1000,
        "socket_connect_timeout": settings.timeout_ms / 1000,
        "decode_responses": False,
        "health_check_interval": 30,
    }
    password = settings.password()
    if password is not None:
        kwargs["password"] = password
    if settings.username:
        kwargs["username"] = settings.username
    if url.startswith("rediss://"):
        if settings.tls_ca_file:
            kwargs["ssl_ca_certs"] = str(settings.tls_ca_file)
        if settings.tls_cert_file:
            kwargs["ssl_certfile"] = str(settings.tls_cert_file)
        if settings.tls_key_file:
            kwargs["ssl_keyfile"] = str(settings.tls_key_file)
        kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    try:
        return redis_asyncio.from_url(url, **kwargs)
    except ValueError as exc:
        raise ValueError(f"fleet.valkey: the URL in {settings.url_env} is not a redis:// or rediss:// URL") from exc


def reason_of(exc: BaseException) -> str:
    """Why an operation failed, for people: the kind of failure, never the address or credentials."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    name = type(exc).__name__
    return {"ConnectionError": "connection refused or lost", "AuthenticationError": "authentication failed"}.get(
        name, name
    )


class Guard:
    """Runs store operations with a deadline and remembers when the server last failed."""

    def __init__(self, settings: ValkeySettings, what: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.what = what
        self.clock = clock
        self.down_until = 0.0
        self.last_error: str | None = None

    @property
    def up(self) -> bool:
        return self.clock() >= self.down_until

    def budget_s(self, deadline: float | None) -> float:
        """Seconds one operation may take: ``timeout_ms``, less if the deadline is nearer."""
        limit = self.settings.timeout_ms / 1000
        if deadline is not None:
            limit = min(limit, max(0.0, deadline - self.clock()))
        return limit

    async def run(self, op: Callable[[], Awaitable[T]], deadline: float | None = None) -> T:
        """``await op()`` within the time allowed; a failure marks the server down and raises :class:`StoreDown`."""
        if not self.up:
            raise StoreDown(self.what, self.last_error or "unavailable")
        limit = self.budget_s(deadline)
        if limit <= 0:
            raise StoreDown(self.what, "no time left before the request's deadline")
        try:
            async with asyncio.timeout(limit):
                result = await op()
        except Exception as exc:
            self.fail(exc)
            raise StoreDown(self.what, reason_of(exc)) from exc
        self.last_error = None
        return result

    def fail(self, exc: BaseException) -> None:
        if self.last_error is None:
            log.warning("%s: Valkey %s; retrying in %d ms", self.what, reason_of(exc), self.settings.retry_after_ms)
        self.last_error = reason_of(exc)
        self.down_until = self.clock() + self.settings.retry_after_ms / 1000


class StoreDown(Exception):
    """A shared store did not answer in time; ``reason`` says why, for the UNAVAILABLE message."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"{what}: Valkey {reason}")

    def unavailable(self) -> Unavailable:
        return Unavailable(
            f"{self.what} is unavailable (Valkey {self.reason}; fleet.valkey.on_unavailable: fail_closed)"
        )
