"""Python client for policyd: sync (:class:`Client`) and asyncio (:class:`AsyncClient`).

The messages are the generated ones, re-exported as ``policyd_client.pb``::

    from policyd_client import Client, pb, prompt

    with Client("127.0.0.1:50051", insecure=True) as client:
        resp = client.complete(prompt("Write a binary search", task="coding", stakes=pb.STAKES_HIGH))
        if accepted(resp):
            print(resp.output.content)
"""

from __future__ import annotations

from policyd_client._defaults import DEFAULT_TIMEOUT_S, SERVICE_CONFIG, NoFinalResponse, accepted, prompt
from policyd_client.aio import AsyncClient
from policyd_client.client import Client
from policyd_client.errors import ErrorDetails, details_of, reason_of, retry_delay
from policyd_client.v1 import policyd_pb2 as pb

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "SERVICE_CONFIG",
    "AsyncClient",
    "Client",
    "ErrorDetails",
    "NoFinalResponse",
    "accepted",
    "details_of",
    "pb",
    "prompt",
    "reason_of",
    "retry_delay",
]
