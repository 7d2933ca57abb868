"""What both clients share: channel options, credentials, call metadata and request helpers.

The defaults are the ones a service wants: a deadline on every call, keepalive, and retries
of UNAVAILABLE (the daemon restarting, draining on SIGTERM, or not up yet) through the gRPC
service config. Other status codes are answers and are never retried.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio

from policyd_client.v1 import policyd_pb2 as pb
from policyd_client.v1 import policyd_pb2_grpc as pb_grpc

DEFAULT_TIMEOUT_S = 30.0
"""Deadline of calls that set none; matches the daemon's default request deadline."""

SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": [{"service": "policyd.v1.PolicyService"}],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}

KEEPALIVE_MS = 5 * 60 * 1000
"""Pings on an idle connection with calls in flight: the shortest interval gRPC servers accept by default."""

ChannelOptions = Sequence[tuple[str, Any]]


def channel_options(extra: ChannelOptions = ()) -> list[tuple[str, Any]]:
    return [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
        ("grpc.keepalive_time_ms", KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", 20_000),
        *extra,
    ]


def open_channel(
    target: str,
    *,
    insecure: bool,
    credentials: grpc.ChannelCredentials | None,
    options: ChannelOptions,
    aio: bool,
) -> Any:
    """A grpc (or grpc.aio) channel: plaintext, or TLS with the system roots unless credentials are given."""
    if insecure and credentials is not None:
        raise ValueError("insecure=True and credentials exclude each other")
    module: Any = grpc.aio if aio else grpc
    if insecure:
        return module.insecure_channel(target, options=channel_options(options))
    return module.secure_channel(
        target, credentials or grpc.ssl_channel_credentials(), options=channel_options(options)
    )


class CallDefaults:
    """What every call of a client carries: its deadline and the bearer token (never logged)."""

    def __init__(self, timeout: float | None, token: str | None) -> None:
        self.timeout = timeout
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def __call__(self, timeout: float | None) -> dict[str, Any]:
        """Keyword arguments of a stub call; ``timeout`` None means the client's default."""
        return {"timeout": self.timeout if timeout is None else timeout, "metadata": self.metadata}


ACCEPTED_STATUSES = (pb.OUTCOME_STATUS_ACCEPTED, pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED)


def accepted(response: pb.CompleteResponse) -> bool:
    """Whether ``response`` is an answer to use (ACCEPTED or ACCEPTED_UNVALIDATED).

    A response without an error can still be REJECTED, BUDGET_EXHAUSTED, DEADLINE_EXCEEDED or
    UPSTREAM_FAILED, with no output to use.
    """
    return response.status in ACCEPTED_STATUSES


def prompt(text: str, **fields: Any) -> pb.CompleteRequest:
    """A request with one user message; ``fields`` are CompleteRequest fields (task, stakes, ...)."""
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **fields)


def embed_request(
    texts: Sequence[str], dimensions: int | None, task: str, tenant: str, base: pb.EmbedRequest | None
) -> pb.EmbedRequest:
    """An EmbedRequest: ``base`` (if any) with the texts and the given fields set."""
    msg = pb.EmbedRequest()
    if base is not None:
        msg.CopyFrom(base)
    msg.texts.extend(texts)
    if dimensions is not None:
        msg.dimensions = dimensions
    if task:
        msg.task = task
    if tenant:
        msg.tenant = tenant
    return msg


class Connection:
    """The channel, the generated stub and the call defaults: what Client and AsyncClient share.

    ``timeout`` (seconds) is the deadline of calls that pass none; None leaves them unbounded.
    ``insecure=True`` is plaintext, for a daemon on localhost or in the same pod; otherwise TLS
    (the system roots, or ``credentials``). ``token`` goes with every call as a bearer token.
    ``stub`` is the generated stub on the same channel, for anything the methods do not cover.
    """

    AIO = False

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        insecure: bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        options: ChannelOptions = (),
    ) -> None:
        self.channel = open_channel(target, insecure=insecure, credentials=credentials, options=options, aio=self.AIO)
        self.stub = pb_grpc.PolicyServiceStub(self.channel)
        self._call = CallDefaults(timeout, token)


class NoFinalResponse(RuntimeError):
    """A stream ended cleanly without its final event: the daemon promises never to do that."""

    def __init__(self) -> None:
        super().__init__("policyd: stream ended without a final response")
