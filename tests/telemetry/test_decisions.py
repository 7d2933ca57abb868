"""The versioned decision event and its sinks: JSON lines, OTel logs, third-party sinks, never blocking."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest

from policyd import __version__ as POLICYD_VERSION
from policyd.daemon import DaemonOptions, build_daemon
from policyd.errors import ConfigError
from policyd.plugin.manager import default_host
from policyd.telemetry.decision import SCHEMA_VERSION, DecisionLog
from policyd.telemetry.setup import build_telemetry, disabled
from policyd.types import Explanation, Message, Outcome, OutcomeStatus, Request, Role
from tests.telemetry.support import policy, user

JSONL = "[{name: jsonl, params: {path: logs/decisions.jsonl}}]"


async def drain(t) -> None:
    if t.daemon.decisions is not None:
        await asyncio.to_thread(t.daemon.decisions.queue.join)


async def test_jsonl_sink_writes_one_versioned_event_per_decision(traced, upstream):
    t = await traced(policy(upstream.base_url, sinks=JSONL))
    resp = await t.stub.Complete(user("write a sort", task="coding", request_id="req-7", tenant="acme"))
    await drain(t)
    path = t.data_dir / "logs" / "decisions.jsonl"
    (line,) = path.read_text(encoding="utf-8").splitlines()
    event = json.loads(line)
    assert (event["type"], event["schema_version"]) == ("policyd.decision", SCHEMA_VERSION)
    assert (event["decision_id"], event["trace_id"], event["request_id"]) == (resp.decision_id, resp.trace_id, "req-7")
    assert len(event["trace_id"]) == 32 and len(event["span_id"]) == 16
    assert (event["policy"], event["rule"], event["strategy"], event["policy_version"]) == (
        "default",
        "checked-coding",
        "draft-validate",
        "tel-1",
    )
    assert (event["tenant"], event["task"], event["status"]) == ("acme", "coding", "accepted-unvalidated")
    assert event["models"] == ["fixture-drafter", "claude-sonnet-4", "claude-opus-4.1"]
    assert event["verdicts"] == [{"kind": "reject", "validator": "llm-judge", "reason": "", "attempt": 1}]
    assert [a["role"] for a in event["attempts"]] == ["draft", "validate", "escalate"]
    assert event["cost_usd"] == pytest.approx(resp.total_cost_usd)
    assert "attempts.verdict.reason" in event["masked"]
    assert path.stat().st_mode & 0o777 == 0o600


async def test_otel_logs_sink_is_the_default_when_a_logs_exporter_is_configured(traced, upstream):
    t = await traced(policy(upstream.base_url).replace("  decisions:\n    sinks: []\n", ""))
    resp = await t.stub.Complete(user("hello"))
    await drain(t)
    (record,) = [r.log_record for r in t.logs.get_finished_logs()]
    assert record.event_name == "policyd.decision"
    assert format(record.trace_id, "032x") == resp.trace_id
    assert record.body["decision_id"] == resp.decision_id
    assert record.body["rule"] == "rest"
    assert record.attributes["policyd.outcome"] == "accepted-unvalidated"


def _daemon(tmp_path: Path, text: str, telemetry=None):
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return build_daemon(
        DaemonOptions(config_path=str(path), data_dir=tmp_path / "data", entry_points=False, telemetry=telemetry),
        host=default_host(entry_points=False),
    )


BASE = """
policies:
  default:
    rules: [{name: r, plan: {strategy: single, params: {model: gpt-oss-120b}}}]
"""


@pytest.mark.parametrize(
    ("sinks", "message"),
    [
        (
            "[{name: jsonlines}]",
            "policy.yaml: telemetry.decisions.sinks[0].name: unknown decision sink 'jsonlines' "
            "(known: jsonl, otel-logs); did you mean 'jsonl'?",
        ),
        (
            "[{name: jsonl, params: {path: 3, mode: x}}]",
            "policy.yaml: telemetry.decisions.sinks[0].params.path: Input should be a valid string",
        ),
        (
            "[{name: otel-logs}]",
            "policy.yaml: telemetry.decisions.sinks[0]: decision sink 'otel-logs' "
            f"(plugin policyd_decisions {POLICYD_VERSION}): "
            "needs an OpenTelemetry logs exporter: set OTEL_LOGS_EXPORTER=otlp (or console)",
        ),
    ],
)
def test_bad_sink_entries_fail_at_boot_naming_the_key_path(tmp_path, sinks, message):
    with pytest.raises(ConfigError) as err:
        _daemon(tmp_path, BASE + f"telemetry:\n  decisions:\n    sinks: {sinks}\n", telemetry=disabled())
    assert str(err.value).endswith(message)


def test_unknown_telemetry_key_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"telemetry.capture_contents: unknown key"):
        _daemon(tmp_path, BASE + "telemetry: {capture_contents: true}\n", telemetry=disabled())


def _outcome(i: int) -> tuple[Request, Outcome]:
    req = Request(request_id=f"r{i}", messages=(Message(role=Role.USER, content="x"),))
    exp = Explanation(policy="p", rule="r", strategy="single", reason="")
    return req, Outcome(request_id=f"r{i}", status=OutcomeStatus.ACCEPTED, output=None, attempts=(), explanation=exp)


class BlockedSink:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.events: list[dict] = []

    def emit(self, event):
        self.release.wait(10)
        self.events.append(dict(event))

    def close(self):
        self.closed = True


def test_a_stuck_sink_never_blocks_the_listener_and_overflow_is_dropped_and_counted():
    sink = BlockedSink()
    log = DecisionLog([("stuck", sink)], capture=False, queue_size=4)
    started = time.monotonic()
    for i in range(50):
        log(*_outcome(i))
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, "the listener waited for the sink"
    assert log.dropped >= 50 - 4 - 1  # the queue holds 4, the worker holds at most 1
    sink.release.set()
    log.close()
    assert sink.closed
    assert len(sink.events) == 50 - log.dropped
    assert [e["request_id"] for e in sink.events] == sorted(
        (e["request_id"] for e in sink.events), key=lambda r: int(r[1:])
    )


async def test_third_party_sink_registered_through_the_hook_receives_events(tmp_path, upstream):
    from policyd.plugin import hookimpl
    from policyd.plugin.specs import DecisionSinkSpec, NoParams

    received: list[dict] = []

    class Collect:
        def emit(self, event):
            received.append(dict(event))

        def close(self):
            pass

    class Plugin:
        @hookimpl
        def policyd_register_decision_sinks(self, register):
            register(DecisionSinkSpec(name="collect", factory=lambda ctx, params: Collect(), params=NoParams))

    host = default_host(entry_points=False)
    host.add(Plugin(), "collector", version="1.0", origin="direct")
    path = tmp_path / "policy.yaml"
    path.write_text(BASE + "telemetry:\n  decisions:\n    sinks: [{name: collect}]\n", encoding="utf-8")
    daemon = build_daemon(
        DaemonOptions(config_path=str(path), data_dir=tmp_path, entry_points=False, telemetry=build_telemetry({})),
        host=host,
    )
    outcome = await daemon.engine.complete(Request(request_id="x1", messages=(Message(role=Role.USER, content="hi"),)))
    await daemon.aclose()
    assert [e["decision_id"] for e in received] == [outcome.decision_id]
    assert received[0]["models"] == ["gpt-oss-120b"]
