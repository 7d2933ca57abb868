"""A canary API key, bearer token and prompt never reach logs, spans, errors or answers' metadata.

A daemon process at DEBUG with auth on and traces and logs exported to a real OTLP
receiver; its provider's key is a canary that the fake upstream echoes back in error
bodies, as real APIs do ("Incorrect API key provided: sk-..."). The telemetry suite
checks its own scrubber in depth; this is the whole daemon, with the real provider.
"""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
from faultkit import auth_section, bearer, daemon_env, spawn, user
from upstreams import completion, openai_policy

from policyd.server.auth import hash_token
from policyd.v1 import policyd_pb2 as pb
from tests.plugins.fake_upstream import Json
from tests.telemetry.otlp_receiver import start_receiver

KEY = "sk-canary-key-5c1e0d9b7a3f"
TOKEN = "canary-bearer-token-8e2a4f6c"
WRONG_TOKEN = "canary-wrong-token-1b3d5f7e"
PROMPT = "walrus-canary-prompt-3391 summarise my medical record"


async def _run(tmp_path, fake) -> tuple[str, bytes, list[str]]:
    """Runs the scenario; returns the daemon's stderr, every OTLP payload, and every error text callers saw."""
    server, otlp_port, received = await start_receiver()
    echo = f"Incorrect API key provided: {KEY}. Your prompt was: {PROMPT}"
    fake.queue(
        Json(completion("fine")),
        Json({"error": {"message": echo, "type": "invalid_request_error"}}, 401),
        Json({"error": {"message": echo}}, 500),
        Json({"error": {"message": echo}}, 500),
    )
    config = tmp_path / "policy.yaml"
    auth = auth_section().replace("tenants:\n", f'tenants:\n    canary: {{token_sha256: ["{hash_token(TOKEN)}"]}}\n')
    config.write_text(openai_policy(fake.url, key_env="CANARY_PROVIDER_KEY", max_attempts=2) + auth)
    env = daemon_env(
        CANARY_PROVIDER_KEY=KEY,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{otlp_port}",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    details: list[str] = []
    try:
        async with spawn(config, tmp_path / "data", env=env) as proc:
            async with proc.channel() as channel:
                stub = proc.stub(channel)
                ok = await stub.Complete(user(PROMPT), metadata=bearer(TOKEN), timeout=10)
                assert ok.output.content == "fine"
                for _ in range(2):  # a 401, then 500s retried until they give up
                    failed = await stub.Complete(
                        user(PROMPT, cache_mode=pb.CACHE_MODE_BYPASS), metadata=bearer(TOKEN), timeout=10
                    )
                    assert failed.status == pb.OUTCOME_STATUS_UPSTREAM_FAILED
                    details += [a.error for a in failed.attempts]
                    assert failed.attempts[0].error, "the failure is reported, just without the secret"
                for metadata in (bearer(WRONG_TOKEN), bearer(TOKEN)):
                    try:
                        await stub.Complete(user(PROMPT, policy=f"no-such {KEY}"), metadata=metadata, timeout=10)
                    except grpc.aio.AioRpcError as exc:
                        details.append(f"{exc.code()} {exc.details()}")
            proc.proc.terminate()
            assert await proc.wait_exit(15) == 0
        await asyncio.sleep(0.2)
    finally:
        await server.stop(0)
    assert fake.seen[0].headers["authorization"] == f"Bearer {KEY}", "the key was really used"
    assert any("StatusCode.UNAUTHENTICATED" in d for d in details) and any("NOT_FOUND" in d for d in details)
    assert any("HTTP 401" in d for d in details), details
    assert received.spans(), "spans were exported"
    return proc.stderr, received.raw(), details


async def test_canary_key_and_bearer_tokens_are_absent_from_logs_spans_and_errors(tmp_path, fake):
    stderr, exported, details = await _run(tmp_path, fake)
    for canary in (KEY, TOKEN, WRONG_TOKEN):
        assert canary not in stderr, canary
        assert canary.encode() not in exported, canary
        assert not any(canary in d for d in details), (canary, details)
    assert PROMPT not in stderr, "the log never holds prompt text"


async def test_a_prompt_echoed_by_an_upstream_error_is_absent_from_telemetry_without_capture(tmp_path, fake):
    _, exported, _ = await _run(tmp_path, fake)
    assert PROMPT.encode() not in exported
