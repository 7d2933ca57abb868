"""Errors for programs: a domain error as a ``google.rpc.Status`` with its details (AIP-193).

Every error the daemon answers carries, in the ``grpc-status-details-bin`` trailer, a
``google.rpc.Status`` whose details hold an ``ErrorInfo`` (stable UPPER_SNAKE ``reason``,
``domain`` ``policyd.dev``, ``metadata``), and where they apply a ``BadRequest`` (the field
violations of INVALID_ARGUMENT), a ``RetryInfo`` (rate limits, upstream ``Retry-After``) and a
``QuotaFailure`` (budget refusals). The English message stays the status message, for people.
The reasons are documented in ``docs/errors.md``.
"""

from __future__ import annotations

import math

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from policyd.errors import DOMAIN, PolicydError

DETAILS_KEY = "grpc-status-details-bin"


def _any(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _retry_delay(seconds: float) -> duration_pb2.Duration:
    """A whole number of milliseconds, never negative: what a caller should wait before retrying."""
    millis = max(0, math.ceil(seconds * 1000))
    return duration_pb2.Duration(seconds=millis // 1000, nanos=(millis % 1000) * 1_000_000)


def error_info(reason: str, metadata: dict[str, str] | None = None) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {})


def status_proto(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: dict[str, str] | None = None,
    exc: BaseException | None = None,
) -> status_pb2.Status:
    """The ``google.rpc.Status`` for an answer with this code, message and reason.

    ``exc``, when it is a :class:`PolicydError`, adds its field violations, retry delay and
    quota violations (the reason and metadata come from it through the caller).
    """
    details = [_any(error_info(reason, metadata))]
    if isinstance(exc, PolicydError):
        if exc.field_violations:
            violations = [
                error_details_pb2.BadRequest.FieldViolation(field=field, description=problem)
                for field, problem in exc.field_violations
            ]
            details.append(_any(error_details_pb2.BadRequest(field_violations=violations)))
        if exc.retry_after_s is not None and math.isfinite(exc.retry_after_s):
            details.append(_any(error_details_pb2.RetryInfo(retry_delay=_retry_delay(exc.retry_after_s))))
        if exc.quota:
            quota = [
                error_details_pb2.QuotaFailure.Violation(subject=q.subject, description=q.description)
                for q in exc.quota
            ]
            details.append(_any(error_details_pb2.QuotaFailure(violations=quota)))
    return status_pb2.Status(code=_CODE_NUMBERS[code], message=message, details=details)


def trailer(status: status_pb2.Status) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata carrying ``status`` as gRPC's richer error model expects."""
    return ((DETAILS_KEY, status.SerializeToString()),)


_CODE_NUMBERS: dict[grpc.StatusCode, int] = {code: code.value[0] for code in grpc.StatusCode}
