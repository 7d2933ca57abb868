"""Domain errors. One server interceptor maps each class to a gRPC status code.

Messages are written for the caller: they name the field, key or plugin at fault,
and never contain secrets.
"""

from __future__ import annotations


class PolicydError(Exception):
    """Base of every error policyd raises on purpose."""


class InvalidArgument(PolicydError):
    """A request field is invalid; ``field`` is its path (``messages[0].role``)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class NotFound(PolicydError):
    """A named thing (policy, request id, cache entry) does not exist."""


class FailedPrecondition(PolicydError):
    """The request is valid but the configuration cannot serve it (no rule matches)."""


class PermissionDenied(PolicydError):
    """The caller is authenticated but may not do this."""


class Unauthenticated(PolicydError):
    """The caller presented no valid credentials."""


class ResourceExhausted(PolicydError):
    """A limit (budget, rate, concurrency) refuses the request.

    ``retry_after_s``, when the limit knows it, is how long until a retry can pass
    (the HTTP front door sends it as ``Retry-After``).
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


class DeadlineExceeded(PolicydError):
    """The request's deadline passed before anything could be answered."""


class Unavailable(PolicydError):
    """The daemon cannot serve now (draining, every upstream down)."""


class ConfigError(PolicydError):
    """A policy file is invalid: names the file, the key path and the expectation."""

    def __init__(self, file: str, path: str, problem: str) -> None:
        self.file = file
        self.path = path
        self.problem = problem
        where = f"{file}: {path}" if path else file
        super().__init__(f"{where}: {problem}")


class PluginError(PolicydError):
    """A plugin failed; the message names the plugin (and its version)."""

    def __init__(self, plugin: str, problem: str) -> None:
        self.plugin = plugin
        self.problem = problem
        super().__init__(f"plugin {plugin}: {problem}")


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
        self.retry_after_s = retry_after_s
        self.detail = detail
        self.summary = f"{provider}: {message}"
        super().__init__(f"{self.summary}: {detail}" if detail else self.summary)
