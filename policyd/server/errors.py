"""Domain errors mapped to gRPC status codes, in one place.

Servicers raise :mod:`policyd.errors`; the PolicyService's gate (:mod:`policyd.server.gate`,
around every method) turns them into statuses with the message the caller needs and, for
programs, ``google.rpc`` details in the ``grpc-status-details-bin`` trailer
(:mod:`policyd.server.details`). Anything else is INTERNAL with a generic message and an
incident id, and its cause goes to the log only.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from policyd import errors
from policyd.engine.context import StreamBroken
from policyd.server import details
from policyd.server.wrap import Deserializer
from policyd.telemetry.redact import scrub

log = logging.getLogger(__name__)

CODES: list[tuple[type[Exception], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (StreamBroken, grpc.StatusCode.UNAVAILABLE),
    (errors.UpstreamError, grpc.StatusCode.UNAVAILABLE),
    (errors.PluginError, grpc.StatusCode.INTERNAL),
    (NotImplementedError, grpc.StatusCode.UNIMPLEMENTED),
]


@dataclass(frozen=True)
class Answer:
    """What the caller gets for an error: a code, a message for people, details for programs."""

    code: grpc.StatusCode
    message: str
    status: status_pb2.Status

    async def abort(self, context: grpc.aio.ServicerContext) -> None:
        await context.abort(self.code, self.message, trailing_metadata=details.trailer(self.status))


def answer(code: grpc.StatusCode, message: str, reason: str, metadata: dict[str, str] | None = None) -> Answer:
    return Answer(code, message, details.status_proto(code, message, reason, metadata))


def answer_for(exc: BaseException) -> Answer:
    for cls, code in CODES:
        if isinstance(exc, cls):
            message = scrub(str(exc))
            if isinstance(exc, errors.PolicydError):
                metadata = {key: scrub(value) for key, value in exc.metadata.items()}
                return Answer(code, message, details.status_proto(code, message, exc.reason, metadata, exc))
            return answer(code, message, "NOT_IMPLEMENTED")
    incident = uuid.uuid4().hex[:12]
    log.error("internal error, incident %s", incident, exc_info=exc)
    return answer(
        grpc.StatusCode.INTERNAL,
        f"internal error (incident {incident}; see the daemon log)",
        "INTERNAL",
        {"incident": incident},
    )


async def trap(exc: Exception, context: grpc.aio.ServicerContext) -> None:
    """End the call with the status ``exc`` maps to."""
    await answer_for(exc).abort(context)


@dataclass(frozen=True)
class Unreadable:
    """A request body protobuf could not parse (e.g. invalid UTF-8 in a string field).

    grpc would answer UNKNOWN for a deserializer's exception; handing this to the
    behaviour instead lets it answer INVALID_ARGUMENT.
    """

    problem: str


def tolerant(deserialize: Deserializer) -> Deserializer:
    """``deserialize`` that returns :class:`Unreadable` for a body protobuf cannot parse."""

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError as exc:
            return Unreadable(str(exc) or "malformed protobuf")

    return parse


async def refuse(request: Unreadable, context: grpc.aio.ServicerContext) -> None:
    await answer(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"request: cannot be parsed ({request.problem}); string fields must be valid UTF-8",
        "MALFORMED_REQUEST",
    ).abort(context)
