"""Domain errors. One server interceptor maps each class to a gRPC status code.

Messages are written for the caller: they name the field, key or plugin at fault,
and never contain secrets. Every error also carries what a program reads (AIP-193): a
stable UPPER_SNAKE ``reason`` (a class default, or a more precise one given where it is
raised), ``metadata`` (``policy``, ``budget``, ``model``, ``provider``, ``spent_usd``...),
and, where they apply, ``retry_after_s`` and ``quota`` violations. The server turns them
into ``google.rpc`` details (:mod:`policyd.server.details`); the reasons are listed in
``docs/errors.md`` and never renamed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

DOMAIN = "policyd.dev"
"""The ``ErrorInfo.domain`` of every error the daemon answers."""


class QuotaViolation(NamedTuple):
    """A limit that refused the request: ``subject`` names it (``budget:tenant/acme/daily``).

    A named tuple, not a dataclass: a group's supervisor imports this module before it starts its
    workers, and ``dataclasses`` (with ``inspect``) is most of what that import would cost."""

    subject: str
    description: str


class PolicydError(Exception):
    """Base of every error policyd raises on purpose."""

    reason: str = "POLICYD_ERROR"
    """Stable UPPER_SNAKE reason; subclasses set their default, raise sites may refine it."""

    def __init__(
        self,
        *args: object,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_after_s: float | None = None,
        quota: Iterable[QuotaViolation] = (),
    ) -> None:
        super().__init__(*args)
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.retry_after_s = retry_after_s
        self.quota: tuple[QuotaViolation, ...] = tuple(quota)

    @property
    def field_violations(self) -> tuple[tuple[str, str], ...]:
        """(field path, problem) pairs, for INVALID_ARGUMENT; empty for other errors."""
        return ()


class InvalidArgument(PolicydError):
    """A request field is invalid; ``field`` is its path (``messages[0].role``)."""

    reason = "INVALID_FIELD"

    def __init__(self, field: str, problem: str, *, reason: str | None = None) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}", reason=reason, metadata={"field": field})

    @property
    def field_violations(self) -> tuple[tuple[str, str], ...]:
        return ((self.field, self.problem),)


class AlreadyExists(PolicydError):
    """The request's id was used before for a different request (an idempotency conflict)."""

    reason = "REQUEST_ID_REUSED"


class NotFound(PolicydError):
    """A named thing (policy, request id, cache entry) does not exist."""

    reason = "NOT_FOUND"


class FailedPrecondition(PolicydError):
    """The request is valid but the configuration cannot serve it (no rule matches)."""

    reason = "FAILED_PRECONDITION"


class PermissionDenied(PolicydError):
    """The caller is authenticated but may not do this."""

    reason = "PERMISSION_DENIED"


class Unauthenticated(PolicydError):
    """The caller presented no valid credentials."""

    reason = "UNAUTHENTICATED"


class ResourceExhausted(PolicydError):
    """A limit (budget, rate, concurrency) refuses the request.

    ``retry_after_s``, when the limit knows it, is how long until a retry can pass (a
    RetryInfo on gRPC; ``Retry-After`` on the HTTP front door).
    """

    reason = "RESOURCE_EXHAUSTED"


class DeadlineExceeded(PolicydError):
    """The request's deadline passed before anything could be answered."""

    reason = "DEADLINE_EXCEEDED"


class Unavailable(PolicydError):
    """The daemon cannot serve now (draining, every upstream down)."""

    reason = "UNAVAILABLE"


class ConfigError(PolicydError):
    """A policy file is invalid: names the file, the key path and the expectation."""

    reason = "CONFIG_INVALID"

    def __init__(self, file: str, path: str, problem: str) -> None:
        self.file = file
        self.path = path
        self.problem = problem
        where = f"{file}: {path}" if path else file
        super().__init__(f"{where}: {problem}", metadata={"key": path} if path else None)


class PluginError(PolicydError):
    """A plugin failed; the message names the plugin (and its version)."""

    reason = "PLUGIN_FAILED"

    def __init__(self, plugin: str, problem: str, *, metadata: Mapping[str, str] | None = None) -> None:
        self.plugin = plugin
        self.problem = problem
        super().__init__(f"plugin {plugin}: {problem}", metadata={"plugin": plugin, **(metadata or {})})


class PluginTimeout(PluginError):
    """A plugin's code ran past its time limit or the request's deadline.

    Only that request fails (with the plugin and its version named); the daemon goes on.
    """


class UpstreamError(PolicydError):
    """A provider's upstream failed. ``retryable`` drives the engine's retries.

    ``message`` is policyd's own words; ``detail`` is text the upstream supplied (an
    error body's message, a refusal). The detail may quote the prompt back, so it goes
    to the caller (who sent that prompt) but never to telemetry, logs or the ledger:
    those use :attr:`summary`.
    """

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
        detail: str = "",
    ) -> None:
        self.provider = provider
        self.message = message
        self.retryable = retryable
        self.status = status
        self.detail = detail
        self.summary = f"{provider}: {message}"
        metadata = {"provider": provider, **({"upstream_status": str(status)} if status is not None else {})}
        super().__init__(
            f"{self.summary}: {detail}" if detail else self.summary,
            reason="UPSTREAM_RATE_LIMITED" if status == 429 else "UPSTREAM_FAILED",
            metadata=metadata,
            retry_after_s=retry_after_s,
        )
