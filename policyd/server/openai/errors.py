"""Domain errors → OpenAI's error JSON and HTTP status, from the same classes gRPC maps.

The table mirrors :data:`policyd.server.errors.CODES` (gRPC status ↔ HTTP status as
Google's ``google.rpc.Code`` mapping has them), with OpenAI's ``type`` and ``code``
names so an SDK raises its matching class (``BadRequestError``, ``RateLimitError``…).
Anything unexpected is a 500 with an incident id; its cause goes to the log only.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from policyd import errors
from policyd.engine.stops import StreamBroken
from policyd.telemetry.redact import scrub
from policyd.types import Outcome, OutcomeStatus

log = logging.getLogger(__name__)


@dataclass(eq=False)
class HttpError(Exception):
    """An answer in OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""

    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def json(self) -> bytes:
        return orjson.dumps(self.body())


Reply = tuple[int, dict[str, str], bytes]
"""A whole JSON answer: status, headers (besides the content type and length), body."""


def reply_of(error: HttpError, request_id: str = "") -> Reply:
    """An error's answer; with the request id in ``x-request-id`` and ``x-policyd-request-id`` when known."""
    headers = dict(error.headers)
    if request_id:
        headers["x-request-id"] = headers["x-policyd-request-id"] = request_id
    return error.status, headers, error.json()


NO_RETRY = {"x-should-retry": "false"}
"""OpenAI's SDKs retry 408, 409, 429 and 5xx by default; this header tells them when a retry cannot help."""

# (domain class, HTTP status, OpenAI error type, code, headers); first match wins, subclasses first.
TABLE: list[tuple[type[BaseException], int, str, str, dict[str, str]]] = [
    (errors.InvalidArgument, 400, "invalid_request_error", "invalid_argument", {}),
    (errors.Unauthenticated, 401, "authentication_error", "invalid_api_key", {}),
    (errors.PermissionDenied, 403, "permission_error", "permission_denied", {}),
    (errors.NotFound, 404, "invalid_request_error", "not_found", {}),
    (errors.DeadlineExceeded, 408, "timeout_error", "deadline_exceeded", NO_RETRY),
    (errors.FailedPrecondition, 409, "invalid_request_error", "failed_precondition", NO_RETRY),
    (errors.ConfigError, 409, "invalid_request_error", "failed_precondition", NO_RETRY),
    (errors.ResourceExhausted, 429, "rate_limit_error", "rate_limit_exceeded", {}),
    (errors.PluginError, 500, "server_error", "plugin_error", {}),
    (errors.UpstreamError, 502, "upstream_error", "upstream_failed", {}),
    (StreamBroken, 502, "upstream_error", "stream_broken", {}),
    (errors.Unavailable, 503, "server_error", "unavailable", {}),
    (NotImplementedError, 501, "server_error", "not_implemented", NO_RETRY),
]


def _retry_after(exc: BaseException) -> dict[str, str]:
    seconds = getattr(exc, "retry_after_s", None)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return {}
    return {"retry-after": str(max(1, math.ceil(seconds)))}


def http_error(exc: BaseException) -> HttpError:
    """The HTTP answer for ``exc``; unknown exceptions are logged and become a generic 500."""
    if isinstance(exc, HttpError):
        return exc
    for cls, status, kind, code, headers in TABLE:
        if isinstance(exc, cls):
            param = exc.field if isinstance(exc, errors.InvalidArgument) else None
            return HttpError(status, scrub(str(exc)), kind, code, param, {**headers, **_retry_after(exc)})
    incident = uuid.uuid4().hex[:12]
    log.error("internal error, incident %s", incident, exc_info=exc)
    return HttpError(500, f"internal error (incident {incident}; see the daemon log)", "server_error", "internal")


def outcome_error(outcome: Outcome) -> HttpError | None:
    """An outcome with nothing to answer is an error; one with an answer is a 200 (its status in headers)."""
    if outcome.output is not None:
        return None
    spent = f"after {len(outcome.attempts)} attempts (${outcome.total_cost_usd:.6f} spent)"
    failures = "; ".join(f"{a.model}: {a.error}" for a in outcome.attempts if a.error)
    detail = f": {failures}" if failures else ""
    status = outcome.status
    if status is OutcomeStatus.DEADLINE_EXCEEDED:
        return http_error(errors.DeadlineExceeded(f"deadline exceeded {spent}"))
    if status is OutcomeStatus.BUDGET_EXHAUSTED:
        return HttpError(429, f"budget exhausted {spent}", "insufficient_quota", "insufficient_quota", None, NO_RETRY)
    if status is OutcomeStatus.REJECTED:
        return HttpError(502, f"every answer was rejected {spent}{detail}", "upstream_error", "rejected")
    return HttpError(502, scrub(f"no upstream answered {spent}{detail}"), "upstream_error", "upstream_failed")
