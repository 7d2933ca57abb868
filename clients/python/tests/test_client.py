"""Every RPC through the sync client against a live daemon."""

from __future__ import annotations

import math
from collections.abc import Iterator

import grpc
import pytest

from helpers import ACCEPTED, ledger_absent, unique_prompt
from policyd_client import Client, pb


@pytest.fixture
def client(daemon_addr: str) -> Iterator[Client]:
    with Client(daemon_addr, insecure=True) as c:
        yield c


def test_complete_answers_with_attempts_cost_and_explanation(client: Client) -> None:
    resp = client.complete(unique_prompt("complete", task="coding", request_id="py-sync-1"))

    assert resp.request_id == "py-sync-1"
    assert resp.status in ACCEPTED
    assert resp.output.content
    # Only a validator that calls no model (e.g. a confidence gate) leaves the model empty.
    assert resp.attempts and all(a.model or a.role == pb.ATTEMPT_ROLE_VALIDATE for a in resp.attempts)
    assert resp.total_cost_usd > 0
    assert math.isclose(resp.total_cost_usd, sum(a.cost_usd for a in resp.attempts), abs_tol=1e-9)
    assert resp.explanation.rule and resp.explanation.policy_version


def test_stream_relays_the_answer_then_the_final_response(client: Client) -> None:
    deltas: list[str] = []
    final = client.stream(unique_prompt("stream", task="chat"), deltas.append)

    assert len(deltas) >= 2
    assert "".join(deltas) == final.output.content
    assert final.status in ACCEPTED and final.attempts


def test_stream_events_end_with_exactly_one_final(client: Client) -> None:
    kinds = [e.WhichOneof("event") for e in client.stream_events(unique_prompt("events", task="coding"))]

    assert kinds[-1] == "final" and kinds.count("final") == 1
    assert "delta" in kinds and "attempt" in kinds


def test_explain_shows_the_plan_without_calling_a_model(client: Client) -> None:
    e = client.explain(unique_prompt("explain", task="coding", stakes=pb.STAKES_HIGH))

    assert e.policy and e.rule and e.strategy and e.models
    assert 0 < e.estimated_cost.best_usd <= e.estimated_cost.worst_usd


def test_list_models_filters_by_tag(client: Client) -> None:
    everything = client.list_models()
    coding = client.list_models(tag="coding")

    assert 0 < len(coding) < len(everything)
    assert all("coding" in m.tags and m.context_window > 0 for m in coding)


def test_expired_deadline_is_deadline_exceeded(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.complete(unique_prompt("deadline", task="coding"), timeout=0.01)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    with pytest.raises(grpc.RpcError) as err:
        client.stream(unique_prompt("deadline-stream", task="coding"), timeout=0.01)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_client_timeout_bounds_calls_that_pass_none(daemon_addr: str) -> None:
    with Client(daemon_addr, insecure=True, timeout=0.01) as hurried, pytest.raises(grpc.RpcError) as err:
        hurried.complete(unique_prompt("default-deadline", task="coding"))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_invalid_request_names_the_field(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.complete(pb.CompleteRequest(messages=[pb.Message(content="no role")]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages[0].role" in (err.value.details() or "")


def test_unknown_policy_is_not_found(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.complete(unique_prompt("policy", task="coding", policy="no-such-policy"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_report_outcome_of_unknown_request_is_not_found(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.report_outcome("never-issued", success=False)
    if not ledger_absent(err.value):
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_report_outcome_is_idempotent(client: Client) -> None:
    resp = client.complete(unique_prompt("report", task="coding"))
    try:
        first = client.report_outcome(resp.request_id, success=False, note="did not compile")
    except grpc.RpcError as err:
        if ledger_absent(err):
            return
        raise
    assert first is True
    assert client.report_outcome(resp.request_id, success=False, note="did not compile") is False


def test_get_stats_counts_answered_requests(client: Client) -> None:
    client.complete(unique_prompt("stats", task="coding"))
    try:
        stats = client.get_stats()
    except grpc.RpcError as err:
        if ledger_absent(err):
            return
        raise
    assert sum(row.requests for row in stats.rows) >= 1
    assert stats.policy_version


def test_embed_answers_one_unit_vector_per_text_from_one_model(client: Client) -> None:
    texts = ["policyd routes embeddings", "policyd routes embeddings by policy", "policyd routes embeddings"]
    resp = client.embed(texts)

    assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    assert resp.model and resp.dimensions > 0 and resp.explanation.rule
    assert [e.index for e in resp.embeddings] == [0, 1, 2]
    assert all(len(e.values) == resp.dimensions for e in resp.embeddings)
    assert all(math.isclose(sum(v * v for v in e.values), 1.0, rel_tol=1e-4) for e in resp.embeddings)
    assert list(resp.embeddings[0].values) == list(resp.embeddings[2].values)
    again = client.embed(texts[:1], dimensions=64)
    assert again.dimensions == 64 and len(again.embeddings[0].values) == 64


def test_embed_without_texts_names_the_field(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as info:
        client.embed([])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "texts" in (info.value.details() or "")
