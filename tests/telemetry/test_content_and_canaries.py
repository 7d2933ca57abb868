"""Content capture is opt-in, and a canary API key never leaks into spans, logs, errors or decision events."""

from __future__ import annotations

import json
import logging

import grpc
import pytest

from policyd.telemetry import semconv as sc
from tests.telemetry.support import CANARY_KEY, CANARY_PROMPT, policy, user

JSONL = "[{name: jsonl, params: {path: decisions.jsonl}}]"


def span_dump(t) -> str:
    return "\n".join(s.to_json() for s in t.finished())


def decisions(t) -> list[dict]:
    lines = (t.data_dir / "decisions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


async def drain(t) -> None:
    """Wait until the decision worker has handed every queued event to the sinks."""
    import asyncio

    await asyncio.to_thread(t.daemon.decisions.queue.join)


async def test_without_capture_no_prompt_or_output_is_recorded(traced, upstream):
    t = await traced(policy(upstream.base_url, sinks=JSONL))
    resp = await t.stub.Complete(user(CANARY_PROMPT))
    assert CANARY_PROMPT in resp.output.content  # the simulated answer quotes the prompt...
    dump = span_dump(t)
    assert CANARY_PROMPT not in dump  # ...but no span does
    assert "zebra-canary" not in dump
    assert sc.GEN_AI_INPUT_MESSAGES not in dump and sc.GEN_AI_OUTPUT_MESSAGES not in dump
    await drain(t)
    (event,) = decisions(t)
    assert "input" not in event and "output" not in event
    assert {"input.messages", "output"} <= set(event["masked"])
    assert "zebra-canary" not in json.dumps(event)


@pytest.mark.parametrize("how", ["config", "env"])
async def test_capture_records_messages_in_the_gen_ai_format(traced, upstream, how):
    text = policy(upstream.base_url, capture=how == "config", sinks=JSONL)
    env = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"} if how == "env" else {}
    t = await traced(text, env)
    resp = await t.stub.Complete(user(CANARY_PROMPT, task="coding"))
    calls = {s.attributes[sc.POLICYD_ROLE]: s.attributes for s in t.by_name("chat ")}
    draft_in = json.loads(calls["draft"][sc.GEN_AI_INPUT_MESSAGES])
    assert draft_in == [{"role": "user", "parts": [{"type": "text", "content": CANARY_PROMPT}]}]
    (out,) = json.loads(calls["draft"][sc.GEN_AI_OUTPUT_MESSAGES])
    assert out["role"] == "assistant" and out["finish_reason"] == "stop"
    assert out["parts"][0]["content"].startswith("[fixture draft")
    judge_system = json.loads(calls["validate"][sc.GEN_AI_SYSTEM_INSTRUCTIONS])
    assert judge_system[0]["content"].startswith("You are a strict reviewer.")
    reason = calls["validate"][sc.POLICYD_VERDICT_REASON]  # the judge's reason, kept with capture on
    await drain(t)
    (event,) = decisions(t)
    assert event["input"]["messages"][0]["parts"][0]["content"] == CANARY_PROMPT
    assert event["output"]["parts"][0]["content"] == resp.output.content
    assert event["masked"] == []
    assert reason and event["verdicts"][0]["reason"] == reason


async def test_canary_key_leaks_nowhere(traced, upstream, caplog):
    caplog.set_level(logging.DEBUG)
    t = await traced(policy(upstream.base_url, capture=True, sinks=JSONL))
    metadata = [("authorization", f"Bearer {CANARY_KEY}")]
    labels = {"note": f"my key is {CANARY_KEY}", "team": "search"}
    resp = await t.stub.Complete(user("FAIL-UPSTREAM", task="coding", labels=labels), metadata=metadata)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await t.stub.Complete(user("hi", policy=CANARY_KEY), metadata=metadata)

    # The key really went where a careless provider and caller put it...
    assert upstream.requests[0]["headers"]["authorization"] == f"Bearer {CANARY_KEY}"
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    # ...and was scrubbed from everything policyd reports.
    assert CANARY_KEY not in err.value.details() and "[REDACTED]" in err.value.details()
    assert "HTTP 401" in resp.attempts[0].error and CANARY_KEY not in resp.attempts[0].error
    dump = span_dump(t)
    assert "HTTP 401" in dump and "[REDACTED]" in dump
    assert CANARY_KEY not in dump
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "refused us" in logged and CANARY_KEY not in logged
    await drain(t)
    events = decisions(t)
    assert events and CANARY_KEY not in json.dumps(events)
    assert events[0]["labels"] == {"note": "my key is [REDACTED]", "team": "search"}
    assert "labels.note" in events[0]["masked"]
