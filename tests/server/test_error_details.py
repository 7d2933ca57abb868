"""Errors for programs: every status carries google.rpc details a caller can act on (AIP-193)."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from policyd.server.auth import hash_token
from policyd.v1 import policyd_pb2 as pb

TOKEN = "tok-details-4b1e77"
TOKEN_OPS = "tok-details-ops-9a0c"

POLICY = """
providers:
  simulated: {kind: simulated, latency_scale: 0}
policies:
  default:
    rules:
      - name: coding
        match: {tasks: [coding]}
        plan: {strategy: single, params: {model: gpt-oss-120b}}
  narrow:
    rules:
      - name: only-chat
        match: {tasks: [chat]}
        plan: {strategy: single, params: {model: gpt-oss-120b}}
  ladder:
    rules:
      - name: ladder
        plan: {strategy: fallback, params: {models: [claude-sonnet-4, gpt-oss-120b]}}
limits: {rate: {requests_per_minute: 2}}
budgets:
  policies:
    ladder: {daily_usd: 0.0001}
"""

AUTH = f"""
auth:
  tenants:
    team-a: {{token_sha256: ["{hash_token(TOKEN)}"], policies: [default]}}
    ops: {{token_sha256: ["{hash_token(TOKEN_OPS)}"], all_stats: true}}
"""


def user(text: str, **kw: object) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)


def details(err: grpc.aio.AioRpcError) -> dict[str, object]:
    """The unpacked google.rpc details of an error, by type name."""
    raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert isinstance(raw, bytes), f"{err.code()} {err.details()!r} carries no google.rpc.Status"
    status = status_pb2.Status.FromString(raw)
    assert status.code == err.code().value[0] and status.message == err.details()
    found: dict[str, object] = {}
    for kind in (
        error_details_pb2.ErrorInfo,
        error_details_pb2.BadRequest,
        error_details_pb2.RetryInfo,
        error_details_pb2.QuotaFailure,
    ):
        for any_detail in status.details:
            message = kind()
            if any_detail.Unpack(message):
                found[kind.DESCRIPTOR.name] = message
    info = found["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo) and info.domain == "policyd.dev"
    return found


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return raised.value


async def test_invalid_argument_names_the_field_in_a_bad_request(live):
    _, _, stub = await live(POLICY)
    bad = pb.CompleteRequest(messages=[pb.Message(content="no role")], task="coding")
    err = await failure(stub.Complete(bad))

    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = details(err)
    assert found["ErrorInfo"].reason == "INVALID_FIELD"
    assert found["ErrorInfo"].metadata["field"] == "messages[0].role"
    [violation] = found["BadRequest"].field_violations
    assert violation.field == "messages[0].role"
    assert "must be one of system, user, assistant, tool" in violation.description


async def test_unknown_policy_and_unmatched_request_have_their_own_reasons(live):
    _, _, stub = await live(POLICY)
    err = await failure(stub.Complete(user("hi", policy="nope", task="coding")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    info = details(err)["ErrorInfo"]
    assert (info.reason, info.metadata["policy"]) == ("POLICY_NOT_FOUND", "nope")

    err = await failure(stub.Complete(user("hi", policy="narrow", task="coding")))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = details(err)["ErrorInfo"]
    assert (info.reason, info.metadata["policy"], info.metadata["task"]) == ("NO_MATCHING_RULE", "narrow", "coding")


async def test_a_rate_limited_request_says_when_to_retry(live):
    _, _, stub = await live(POLICY)
    for i in range(2):
        await stub.Complete(user(f"q{i}", task="coding", tenant="acme"))
    err = await failure(stub.Complete(user("one too many", task="coding", tenant="acme")))

    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    found = details(err)
    assert found["ErrorInfo"].reason == "RATE_LIMITED"
    assert found["ErrorInfo"].metadata["tenant"] == "acme"
    delay = found["RetryInfo"].retry_delay.ToTimedelta().total_seconds()
    assert 0 < delay <= 30, "two requests a minute: the next one fits within half a minute"
    assert f"retry in {int(delay) + (delay % 1 > 0)} s" in (err.details() or "")


async def test_a_budget_refusal_names_the_budget_and_the_spend_in_a_quota_failure(live):
    _, _, stub = await live(POLICY.replace("requests_per_minute: 2", "requests_per_minute: 1000"))
    err = None
    for i in range(50):
        try:
            await stub.Complete(user(f"spend {i}", policy="ladder", params=pb.GenerationParams(max_output_tokens=50)))
        except grpc.aio.AioRpcError as exc:
            err = exc
            break
    assert err is not None, "the policy's $0.0001 daily budget must refuse at some point"
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    found = details(err)
    info = found["ErrorInfo"]
    assert (info.reason, info.metadata["budget"], info.metadata["policy"]) == (
        "BUDGET_EXHAUSTED",
        "policy/ladder/daily",
        "ladder",
    )
    spent, reserved, limit, asked = (
        float(info.metadata[k]) for k in ("spent_usd", "reserved_usd", "limit_usd", "request_max_usd")
    )
    assert limit == pytest.approx(0.0001)
    assert spent + reserved + asked > limit, "refused because this request could overrun the budget"
    [violation] = found["QuotaFailure"].violations
    assert violation.subject == "budget:policy/ladder/daily"
    assert "is exhausted" in violation.description
    assert "RetryInfo" not in found


async def test_auth_errors_have_reasons_and_the_no_token_message_stays_readable(live):
    _, _, stub = await live(POLICY + AUTH)
    err = await failure(stub.Complete(user("hi", task="coding")))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details(err)["ErrorInfo"].reason == "MISSING_CREDENTIALS"
    assert "REDACTED" not in (err.details() or "")
    assert "authorization" in (err.details() or "") and "Bearer <token>" in (err.details() or "")

    err = await failure(stub.Complete(user("hi", task="coding"), metadata=(("authorization", "Bearer wrong-token"),)))
    assert details(err)["ErrorInfo"].reason == "INVALID_CREDENTIALS"

    err = await failure(
        stub.Complete(user("hi", task="coding", policy="ladder"), metadata=(("authorization", f"Bearer {TOKEN}"),))
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    info = details(err)["ErrorInfo"]
    assert (info.reason, info.metadata["policy"], info.metadata["tenant"]) == ("POLICY_NOT_ALLOWED", "ladder", "team-a")


async def test_config_error_is_shown_to_an_operator_credential_only(live):
    daemon, _, stub = await live(POLICY + AUTH)
    daemon.config_error = "/etc/policyd/policy.yaml: limits.max_mesages: unknown key"
    tenant = await stub.GetStats(pb.GetStatsRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),))
    ops = await stub.GetStats(pb.GetStatsRequest(), metadata=(("authorization", f"Bearer {TOKEN_OPS}"),))
    assert tenant.config_error == ""
    assert ops.config_error == daemon.config_error
    assert tenant.policy_version == ops.policy_version != ""


async def test_an_internal_error_carries_its_incident_id(live, caplog, monkeypatch):
    daemon, _, stub = await live(POLICY)

    def fail(request):
        raise KeyError("internal detail")

    monkeypatch.setattr(daemon.engine, "explain", fail)
    with caplog.at_level(logging.ERROR):
        err = await failure(stub.Explain(user("hi", task="coding")))
    info = details(err)["ErrorInfo"]
    assert info.reason == "INTERNAL"
    assert info.metadata["incident"] in (err.details() or "")
    assert "internal detail" not in str(info)


async def test_an_unparsable_request_is_malformed_request(live):
    _, running, _ = await live(POLICY)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        raw = channel.unary_unary("/policyd.v1.PolicyService/Complete")
        err = await failure(raw(b"\x12\x04\x12\x02\xff\xfe"))  # messages[0].content: invalid UTF-8
    finally:
        await channel.close()
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(err)["ErrorInfo"].reason == "MALFORMED_REQUEST"
