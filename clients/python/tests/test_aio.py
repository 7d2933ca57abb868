"""The asyncio client against a live daemon: the same answers as the sync one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from helpers import ACCEPTED, ledger_absent, unique_prompt
from policyd_client import AsyncClient, pb


@pytest.fixture
async def client(daemon_addr: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(daemon_addr, insecure=True) as c:
        yield c


async def test_concurrent_completes_each_get_their_answer(client: AsyncClient) -> None:
    requests = [unique_prompt(f"aio-{i}", task="coding", request_id=f"py-aio-{i}") for i in range(4)]
    responses = await asyncio.gather(*(client.complete(r) for r in requests))

    assert [r.request_id for r in responses] == [f"py-aio-{i}" for i in range(4)]
    assert all(r.status in ACCEPTED and r.output.content for r in responses)


async def test_stream_relays_the_answer_then_the_final_response(client: AsyncClient) -> None:
    deltas: list[str] = []
    final = await client.stream(unique_prompt("aio-stream", task="chat"), deltas.append)

    assert len(deltas) >= 2 and "".join(deltas) == final.output.content
    kinds = [e.WhichOneof("event") async for e in client.stream_events(unique_prompt("aio-events", task="chat"))]
    assert kinds[-1] == "final" and kinds.count("final") == 1


async def test_explain_and_list_models(client: AsyncClient) -> None:
    e = await client.explain(unique_prompt("aio-explain", task="coding"))
    models = await client.list_models()

    assert e.rule and e.models
    assert set(e.models) <= {m.id for m in models}


async def test_expired_deadline_is_deadline_exceeded(client: AsyncClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.complete(unique_prompt("aio-deadline", task="coding"), timeout=0.01)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_invalid_request_names_the_field(client: AsyncClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.complete(pb.CompleteRequest(messages=[pb.Message(content="no role")]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages[0].role" in (err.value.details() or "")


async def test_report_outcome_and_stats(client: AsyncClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.report_outcome("never-issued", success=True)
    if ledger_absent(err.value):
        return
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    resp = await client.complete(unique_prompt("aio-report", task="coding"))
    assert await client.report_outcome(resp.request_id, success=True) is True
    assert (await client.get_stats()).rows


async def test_embed_caches_each_text_across_requests(client: AsyncClient) -> None:
    first = await client.embed(["aio embed one", "aio embed two"], task="retrieval")
    second = await client.embed(["aio embed two", "aio embed three"], task="retrieval")

    assert first.model == second.model
    assert [e.cached for e in second.embeddings] == [True, False]
    assert list(second.embeddings[0].values) == list(first.embeddings[1].values)
    assert second.saved_usd >= 0 and second.total_cost_usd >= 0
