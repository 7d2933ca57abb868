"""The client's defaults seen from a server: the bearer token on every call, UNAVAILABLE retried."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from policyd_client import AsyncClient, Client, pb
from policyd_client.v1 import policyd_pb2_grpc as pb_grpc


class Recorder(pb_grpc.PolicyServiceServicer):
    """Records each call's authorization header; fails the first ``unavailable`` calls with UNAVAILABLE."""

    def __init__(self) -> None:
        self.unavailable = 0
        self.calls = 0
        self.authorization: list[str] = []
        self.lock = threading.Lock()

    def ListModels(self, request: pb.ListModelsRequest, context: grpc.ServicerContext) -> pb.ListModelsResponse:
        with self.lock:
            self.calls += 1
            self.authorization += [v for k, v in context.invocation_metadata() if k == "authorization"]
            if self.calls <= self.unavailable:
                context.abort(grpc.StatusCode.UNAVAILABLE, "draining")
        return pb.ListModelsResponse(models=[pb.Model(id="m")])


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    rec = Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_PolicyServiceServicer_to_server(rec, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield rec, f"127.0.0.1:{port}"
    server.stop(None)


def test_token_is_sent_as_bearer_on_every_call(recorder: tuple[Recorder, str]) -> None:
    rec, addr = recorder
    with Client(addr, insecure=True, token="s3cret") as client:
        client.list_models()
        client.list_models(tag="coding")
    assert rec.authorization == ["Bearer s3cret", "Bearer s3cret"]


async def test_async_client_sends_the_token_too(recorder: tuple[Recorder, str]) -> None:
    rec, addr = recorder
    async with AsyncClient(addr, insecure=True, token="s3cret") as client:
        await client.list_models()
    assert rec.authorization == ["Bearer s3cret"]


def test_unavailable_is_retried_by_the_service_config(recorder: tuple[Recorder, str]) -> None:
    rec, addr = recorder
    rec.unavailable = 2
    with Client(addr, insecure=True) as client:
        assert [m.id for m in client.list_models()] == ["m"]
    assert rec.calls == 3


def test_retries_stop_after_four_attempts(recorder: tuple[Recorder, str]) -> None:
    rec, addr = recorder
    rec.unavailable = 10
    with Client(addr, insecure=True) as client, pytest.raises(grpc.RpcError) as err:
        client.list_models()
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert rec.calls == 4


def test_insecure_and_credentials_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="exclude each other"):
        Client("127.0.0.1:1", insecure=True, credentials=grpc.ssl_channel_credentials())
