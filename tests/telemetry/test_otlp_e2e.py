"""End to end: a daemon PROCESS exports to a real OTLP/gRPC receiver; the caller's trace continues.

The daemon loads the fixture plugin through the ``policyd`` entry-point group, as a
third-party plugin; its HTTP provider calls a fake upstream run by this test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from pathlib import Path

import grpc
import grpc.aio
import pytest

from policyd.telemetry import semconv as sc
from policyd.v1 import policyd_pb2_grpc
from tests.telemetry.otlp_receiver import start_receiver
from tests.telemetry.support import (
    CANARY_KEY,
    CANARY_KEY_ENV,
    CANARY_PROMPT,
    FIXTURE_PLUGIN_DIR,
    client_metadata,
    policy,
    user,
)

ROOT = Path(__file__).resolve().parents[2]


def entry_point_site(tmp_path: Path) -> Path:
    """A site directory declaring the fixture plugin in the ``policyd`` entry-point group."""
    info = tmp_path / "site" / "policyd_telemetry_fixture-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: policyd-telemetry-fixture\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[policyd]\ntelemetry_fixture = policyd_telemetry_fixture\n")
    return info.parent


def attr(span, key):
    for kv in span.attributes:
        if kv.key == key:
            v = kv.value
            return getattr(v, v.WhichOneof("value"))
    return None


async def run_daemon(tmp_path: Path, config: str, otlp_port: int):
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(config), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "POLICYD_"))}
    paths = [str(ROOT), str(ROOT / "plugins"), str(FIXTURE_PLUGIN_DIR), str(entry_point_site(tmp_path))]
    env.update(
        PYTHONPATH=os.pathsep.join(paths),
        POLICYD_PLUGINS_ALLOW="telemetry_fixture",
        POLICYD_DATA_DIR=str(tmp_path / "data"),
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{otlp_port}",
        OTEL_SERVICE_NAME="policyd-e2e",
        OTEL_BSP_SCHEDULE_DELAY="100",
        **{CANARY_KEY_ENV: CANARY_KEY},
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "policyd", "--log-level", "DEBUG", "serve", "--config", str(path),
        "--listen", "127.0.0.1:0", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stderr = bytearray()

    async def collect() -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            stderr.extend(chunk)

    collector = asyncio.create_task(collect())
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert line.startswith("policyd listening on 127.0.0.1:"), line + stderr.decode()
    port = int(line.split()[3].rsplit(":", 1)[1])
    return proc, port, stderr, collector


@pytest.mark.parametrize("capture", [False, True], ids=["content-off", "content-on"])
async def test_daemon_process_exports_the_callers_trace_to_a_real_otlp_receiver(tmp_path, upstream, capture):
    server, otlp_port, received = await start_receiver()
    config = policy(upstream.base_url, capture=capture, sinks="[{name: otel-logs}, {name: jsonl}]")
    proc, port, stderr, collector = await run_daemon(tmp_path, config, otlp_port)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = policyd_pb2_grpc.PolicyServiceStub(channel)
            client, metadata = client_metadata()
            secret_md = [*metadata, ("authorization", f"Bearer {CANARY_KEY}")]
            labels = {"note": f"key {CANARY_KEY}"}
            resp = await stub.Complete(
                user(CANARY_PROMPT, task="coding", labels=labels), metadata=secret_md, timeout=20
            )
            client.end()
            failed = await stub.Complete(user("FAIL-UPSTREAM " + CANARY_PROMPT, task="coding"), timeout=20)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Complete(user("x", policy=CANARY_KEY), timeout=20)
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout = await asyncio.wait_for(proc.stdout.read(), 30)
        await asyncio.wait_for(proc.wait(), 30)
        await collector
        await server.stop(0)
    assert proc.returncode == 0, stderr.decode()

    # The trace: client span → RPC span → decision → each attempt, in the caller's trace.
    cctx = client.get_span_context()
    trace_id = cctx.trace_id.to_bytes(16, "big")
    assert resp.trace_id == trace_id.hex()
    spans = [s for s in received.spans() if s.trace_id == trace_id]
    (rpc,) = [s for s in spans if s.name == "/policyd.v1.PolicyService/Complete"]
    assert rpc.parent_span_id == cctx.span_id.to_bytes(8, "big")
    (decision,) = [s for s in spans if s.name == sc.SPAN_DECISION]
    assert decision.parent_span_id == rpc.span_id
    assert attr(decision, sc.POLICYD_RULE) == "checked-coding"
    assert attr(decision, sc.POLICYD_STRATEGY) == "draft-validate"
    calls = sorted(
        (s for s in spans if s.parent_span_id == decision.span_id), key=lambda s: attr(s, sc.POLICYD_ATTEMPT_INDEX)
    )
    assert [attr(c, sc.POLICYD_ROLE) for c in calls] == ["draft", "validate", "escalate"]
    assert [attr(c, sc.GEN_AI_OPERATION_NAME) for c in calls] == ["chat"] * 3
    assert attr(calls[0], sc.GEN_AI_REQUEST_MODEL) == "drafter-v1"
    assert attr(calls[0], sc.GEN_AI_USAGE_OUTPUT_TOKENS) == resp.attempts[0].output_tokens
    assert attr(calls[1], sc.POLICYD_VERDICT) == "reject"
    # The provider's HTTP call continued the same trace from its call span.
    sent = upstream.requests[0]["headers"]["traceparent"].split("-")
    assert sent[1:3] == [trace_id.hex(), calls[0].span_id.hex()]

    # Metrics and decision events (OTel logs) arrived too.
    assert {sc.METRIC_TOKEN_USAGE, sc.METRIC_OPERATION_DURATION, sc.METRIC_OUTCOMES, sc.METRIC_VERDICTS} <= (
        received.metric_names()
    )
    decisions = [r for r in received.log_records() if r.event_name == sc.EVENT_DECISION]
    assert len(decisions) == 2
    assert decisions[0].trace_id == trace_id

    # Canaries: the key nowhere, the prompt only with content capture.
    raw = received.raw() + (tmp_path / "data" / "decisions.jsonl").read_bytes()
    daemon_output = stdout + bytes(stderr)
    assert b"refused us" in daemon_output  # the careless provider did log its headers...
    assert b"[REDACTED]" in raw  # ...and its error text, which quoted the key, was exported scrubbed
    assert CANARY_KEY.encode() not in raw
    assert CANARY_KEY.encode() not in daemon_output
    assert CANARY_KEY not in err.value.details() and CANARY_KEY not in failed.attempts[0].error
    assert (CANARY_PROMPT.encode() in raw) is capture
    assert CANARY_PROMPT.encode() not in daemon_output
    if capture:
        draft_input = json.loads(attr(calls[0], sc.GEN_AI_INPUT_MESSAGES))
        assert draft_input[0]["parts"][0]["content"] == CANARY_PROMPT
