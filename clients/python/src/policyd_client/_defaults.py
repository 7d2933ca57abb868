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

from policyd_client.v1 import policyd_pb2 as pb

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


def channel_credentials(insecure: bool, credentials: grpc.ChannelCredentials | None) -> grpc.ChannelCredentials | None:
    """None for plaintext; TLS with the system roots unless credentials are given."""
    if insecure and credentials is not None:
        raise ValueError("insecure=True and credentials exclude each other")
    if insecure:
        return None
    return credentials or grpc.ssl_channel_credentials()


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The bearer token, sent with every call of the client (never logged)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def prompt(text: str, **fields: Any) -> pb.CompleteRequest:
    """A request with one user message; ``fields`` are CompleteRequest fields (task, stakes, ...)."""
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **fields)


class NoFinalResponse(RuntimeError):
    """A stream ended cleanly without its final event: the daemon promises never to do that."""

    def __init__(self) -> None:
        super().__init__("policyd: stream ended without a final response")
