"""What a program reads from a policyd error: the ``google.rpc`` details of its status.

Every error the daemon answers carries, in the ``grpc-status-details-bin`` trailer, an
``ErrorInfo`` (a stable UPPER_SNAKE ``reason``, the domain ``policyd.dev`` and metadata such as
``policy``, ``budget``, ``model``, ``provider``, ``spent_usd``), plus a ``BadRequest`` for
INVALID_ARGUMENT, a ``RetryInfo`` for rate limits and upstream ``Retry-After``, and a
``QuotaFailure`` for budget refusals::

    try:
        client.complete(request)
    except grpc.RpcError as err:
        if reason_of(err) == "RATE_LIMITED":
            time.sleep(retry_delay(err) or 1.0)

The functions take the ``grpc.RpcError`` (sync or asyncio) and answer None or empty for an
error without details (e.g. one made by the channel itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.rpc import error_details_pb2, status_pb2

DOMAIN = "policyd.dev"
DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class ErrorDetails:
    """The details of one error status, unpacked."""

    reason: str | None = None
    domain: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    retry_delay_s: float | None = None
    field_violations: tuple[tuple[str, str], ...] = ()
    """(field path, description) pairs of a BadRequest."""
    quota_violations: tuple[tuple[str, str], ...] = ()
    """(subject, description) pairs of a QuotaFailure."""


def _trailer(err: Any) -> bytes | None:
    trailing = getattr(err, "trailing_metadata", None)
    if trailing is None:
        return None
    for key, value in trailing() or ():
        if key == DETAILS_KEY and isinstance(value, bytes):
            return value
    return None


def details_of(err: BaseException) -> ErrorDetails:
    """The unpacked details of ``err``; an empty :class:`ErrorDetails` when it carries none."""
    raw = _trailer(err)
    if raw is None:
        return ErrorDetails()
    status = status_pb2.Status.FromString(raw)
    found: dict[str, Any] = {}
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        retry = error_details_pb2.RetryInfo()
        bad = error_details_pb2.BadRequest()
        quota = error_details_pb2.QuotaFailure()
        if detail.Unpack(info):
            found.update(reason=info.reason, domain=info.domain, metadata=dict(info.metadata))
        elif detail.Unpack(retry):
            found["retry_delay_s"] = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
        elif detail.Unpack(bad):
            found["field_violations"] = tuple((v.field, v.description) for v in bad.field_violations)
        elif detail.Unpack(quota):
            found["quota_violations"] = tuple((v.subject, v.description) for v in quota.violations)
    return ErrorDetails(**found)


def reason_of(err: BaseException) -> str | None:
    """The ErrorInfo reason (``RATE_LIMITED``, ``BUDGET_EXHAUSTED``, ``INVALID_FIELD``...), if any."""
    return details_of(err).reason


def retry_delay(err: BaseException) -> float | None:
    """Seconds to wait before retrying, when the daemon said (RetryInfo); None otherwise."""
    return details_of(err).retry_delay_s
