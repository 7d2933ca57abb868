"""Malformed input against a live daemon process: never INTERNAL, never a hang.

Field-by-field cases (empty messages, unknown role, negative tokens, NaN, ...) are in
tests/server/test_rpc.py and 10k messages in test_limits.py; here: bytes protobuf
cannot parse, and a hypothesis fuzz of the whole request message, sent over a real
channel to ``python -m policyd serve``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from faultkit import ROOT, daemon_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc

POLICY = """
version: fuzz
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
limits: {max_messages: 64, rate: {requests_per_minute: 100000}}
policies:
  default:
    rules:
      - name: coding
        match: {tasks: [coding]}
        plan:
          strategy: fail-fast
          params:
            gate: {name: json-schema}
            rungs: [{model: glm-4.5}, {model: gpt-oss-120b, ungated: true}]
      - name: one
        plan: {strategy: single, params: {model: gpt-oss-120b}}
"""

NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
"""A crash (INTERNAL, UNKNOWN) or a hang (the 10 s deadline) is a failure; anything else names the problem."""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> Iterator[tuple[grpc.Channel, Path]]:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "policy.yaml").write_text(POLICY)
    log = folder / "stderr.log"
    cmd = [sys.executable, "-m", "policyd", "serve", "--listen", "127.0.0.1:0", "--config", str(folder / "policy.yaml")]
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*cmd, "--data-dir", str(folder / "data")],
            env=daemon_env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    port = re.search(r"listening on [\d.]+:(\d+)", line)
    assert port, line + log.read_text()
    channel = grpc.insecure_channel(f"127.0.0.1:{port.group(1)}")
    try:
        yield channel, log
    finally:
        channel.close()
        proc.terminate()
        assert proc.wait(20) == 0
    assert "Traceback" not in log.read_text()


def _raw_complete(channel: grpc.Channel, body: bytes) -> grpc.StatusCode:
    call = channel.unary_unary("/policyd.v1.PolicyService/Complete")
    try:
        call(body, timeout=10)
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


def test_invalid_utf8_in_a_string_field_is_invalid_argument(daemon):
    channel, _ = daemon
    body = pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hé")]).SerializeToString()
    call = channel.unary_unary("/policyd.v1.PolicyService/Complete")
    with pytest.raises(grpc.RpcError) as info:
        call(body.replace("hé".encode(), b"h\xff"), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "string fields must be valid UTF-8" in info.value.details()  # type: ignore[attr-defined]
    stream = channel.unary_stream("/policyd.v1.PolicyService/StreamComplete")
    with pytest.raises(grpc.RpcError) as info:
        list(stream(body.replace("hé".encode(), b"h\xc3"), timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the fuzz

ints32 = st.integers(-(2**31), 2**31 - 1)
enum_values = st.integers(-3, 8)
floats = st.floats(allow_nan=True, allow_infinity=True)
text = st.text(max_size=40)
json_text = st.one_of(
    text, st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=3).map(json.dumps)
)

messages = st.builds(
    pb.Message,
    role=enum_values,
    content=text,
    tool_calls=st.lists(st.builds(pb.ToolCall, id=text, name=text, arguments_json=json_text), max_size=2),
    tool_call_id=text,
    name=text,
)
params = st.builds(
    pb.GenerationParams,
    max_output_tokens=st.none() | ints32,
    temperature=st.none() | floats,
    top_p=st.none() | floats,
    stop=st.lists(text, max_size=6),
    response_format=st.builds(pb.ResponseFormat, kind=enum_values, json_schema=json_text, schema_name=text),
    seed=st.none() | st.integers(-(2**63), 2**63 - 1),
)
requests = st.builds(
    pb.CompleteRequest,
    request_id=text,
    messages=st.lists(messages, max_size=6),
    tools=st.lists(st.builds(pb.Tool, name=text, description=text, parameters_json_schema=json_text), max_size=3),
    params=params,
    task=st.sampled_from(["", "coding", "creative"]) | text,
    stakes=enum_values,
    labels=st.dictionaries(text, text, max_size=3),
    constraints=st.builds(
        pb.Constraints,
        allowed_licenses=st.lists(text, max_size=2),
        local_only=st.booleans(),
        max_cost_usd=st.none() | floats,
        allowed_models=st.lists(st.sampled_from(["glm-4.5", "gpt-oss-120b"]) | text, max_size=2),
        denied_models=st.lists(text, max_size=2),
    ),
    cache_mode=enum_values,
    policy=st.sampled_from(["", "default", "nope"]),
    tenant=text,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(msg=requests, method=st.sampled_from(["Complete", "StreamComplete", "Explain"]))
def test_fuzzed_requests_never_crash_or_hang_the_daemon(daemon, msg, method):
    channel, _ = daemon
    stub = policyd_pb2_grpc.PolicyServiceStub(channel)
    try:
        result = getattr(stub, method)(msg, timeout=10)
        if method == "StreamComplete":
            list(result)
    except grpc.RpcError as exc:
        assert exc.code() not in NEVER, (exc.code(), exc.details())  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200))
def test_fuzzed_bytes_never_crash_or_hang_the_daemon(daemon, body):
    assert _raw_complete(daemon[0], body) not in NEVER
