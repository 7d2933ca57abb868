"""The contract a Python service relies on, against a live daemon: errors a program can read."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from helpers import unique_prompt
from policyd_client import Client, accepted, details_of, pb, reason_of, retry_delay


@pytest.fixture
def client(contract_addr: str) -> Iterator[Client]:
    with Client(contract_addr, insecure=True) as c:
        yield c


def test_invalid_request_carries_its_field_violation(client: Client) -> None:
    bad = pb.CompleteRequest(messages=[pb.Message(content="no role")])
    with pytest.raises(grpc.RpcError) as raised:
        client.complete(bad)

    assert reason_of(raised.value) == "INVALID_FIELD"
    found = details_of(raised.value)
    assert found.domain == "policyd.dev"
    assert [f for f, _ in found.field_violations] == ["messages[0].role"]
    assert retry_delay(raised.value) is None


def test_rate_limited_call_says_when_to_retry(client: Client) -> None:
    refused = None
    for _ in range(3):  # one a minute: the 2nd (the 3rd across a minute boundary) is refused
        try:
            client.complete(unique_prompt("throttled", task="chat", tenant="throttled"))
        except grpc.RpcError as exc:
            refused = exc
            break
    assert refused is not None
    assert reason_of(refused) == "RATE_LIMITED"
    delay = retry_delay(refused)
    assert delay is not None and 0 < delay <= 60
    assert details_of(refused).metadata["tenant"] == "throttled"


def test_budget_refusal_names_the_budget(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        client.complete(unique_prompt("broke", task="chat", tenant="broke"))

    found = details_of(raised.value)
    assert found.reason == "BUDGET_EXHAUSTED"
    assert [s for s, _ in found.quota_violations] == ["budget:tenant/broke/daily"]
    assert found.metadata["budget"] == "tenant/broke/daily"


def test_report_without_success_is_invalid_argument(client: Client) -> None:
    resp = client.complete(unique_prompt("report", task="chat"))
    with pytest.raises(grpc.RpcError) as raised:
        client.stub.ReportOutcome(pb.ReportOutcomeRequest(request_id=resp.request_id, note="forgot"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in details_of(raised.value).field_violations] == ["success"]
    assert client.report_outcome(resp.request_id, success=False, score=0.25) is True


def test_reused_request_id_is_replayed_or_refused(client: Client) -> None:
    request = unique_prompt("idem", task="chat", request_id=f"py-idem-{time.monotonic_ns()}")
    first, again = client.complete(request), client.complete(request)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.decision_id == first.decision_id
    with pytest.raises(grpc.RpcError) as raised:
        client.complete(unique_prompt("idem-other", task="chat", request_id=request.request_id))
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason_of(raised.value) == "REQUEST_ID_REUSED"


def test_stream_delivers_each_attempt_once(client: Client) -> None:
    attempts: list[pb.Attempt] = []
    text: list[str] = []
    final = client.stream(unique_prompt("judged", task="creative"), text.append, on_attempt=attempts.append)
    # A rejected draft's text (Attempt.output) is set aside after its event was sent: only the
    # final response carries it, so compare the attempts without it.
    assert [_without_output(a) for a in final.attempts] == [_without_output(a) for a in attempts]
    assert len(attempts) >= 2
    assert [a.index for a in attempts] == list(range(len(attempts)))
    assert "".join(text) == final.output.content


def test_accepted_tells_an_answer_from_a_refusal(client: Client) -> None:
    resp = client.complete(unique_prompt("accepted", task="chat"))
    assert accepted(resp) and resp.output.content
    assert not accepted(pb.CompleteResponse(status=pb.OUTCOME_STATUS_REJECTED))
    assert not accepted(pb.CompleteResponse(status=pb.OUTCOME_STATUS_BUDGET_EXHAUSTED))


def test_errors_without_details_read_as_empty() -> None:
    assert reason_of(ValueError("not grpc")) is None
    assert retry_delay(ValueError("not grpc")) is None
    assert details_of(ValueError("x")).field_violations == ()


def _without_output(attempt: pb.Attempt) -> pb.Attempt:
    copy = pb.Attempt()
    copy.CopyFrom(attempt)
    copy.ClearField("output")
    return copy
