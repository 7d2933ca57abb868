"""Shared by the telemetry tests: the fixture plugin, the policy, canaries, the fake upstream, readers."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from policyd.v1 import policyd_pb2 as pb

FIXTURE_PLUGIN_DIR = Path(__file__).parent / "fixture_plugin"
sys.path.insert(0, str(FIXTURE_PLUGIN_DIR))

import policyd_telemetry_fixture  # noqa: E402, F401  (on sys.path for the daemon's tests)

CANARY_KEY = "sk-canary-7f3a9c2e1b4d5a6f8e0c"
CANARY_KEY_ENV = "POLICYD_TEST_CANARY_API_KEY"
CANARY_PROMPT = "zebra-canary-prompt-4417 write a binary search"
FAIL_MARKER = "FAIL-UPSTREAM"

POLICY = """
version: tel-1
providers:
  simulated: {{kind: simulated, latency_scale: 0.0, seed: b}}  # seed b: the judge rejects the fixture draft
  upstream: {{kind: fixture-http, base_url: "{base_url}", api_key_env: {key_env}}}
models:
  fixture-drafter:
    provider: upstream
    upstream: drafter-v1
    input_usd_per_mtok: 0.10
    output_usd_per_mtok: 0.40
    context_window: 32000
    license: apache-2.0
  claude-sonnet-4: {{options: {{simulated: {{quality: 1.0}}}}}}
telemetry:
  capture_content: {capture}
  decisions:
    sinks: {sinks}
policies:
  default:
    rules:
      - name: checked-coding
        match: {{tasks: [coding]}}
        plan:
          strategy: draft-validate
          params:
            drafters: [fixture-drafter]
            validator: {{name: llm-judge, model: claude-sonnet-4}}
            max_rounds: 1
            escalate_to: claude-opus-4.1
      - name: rest
        plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}
"""


def policy(base_url: str, *, capture: bool = False, sinks: str = "[]") -> str:
    return POLICY.format(base_url=base_url, key_env=CANARY_KEY_ENV, capture=str(capture).lower(), sinks=sinks)


def user(text: str, **kw: Any) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)


@dataclass
class Upstream:
    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


UPSTREAM = web.AppKey("upstream", Upstream)


async def upstream_handler(request: web.Request) -> web.Response:
    upstream = request.app[UPSTREAM]
    body = await request.json()
    upstream.requests.append({"headers": {k.lower(): v for k, v in request.headers.items()}, "body": body})
    prompt = body["messages"][-1]["content"]
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    if FAIL_MARKER in prompt:
        return web.Response(status=401, text=json.dumps({"error": f"invalid api key {key}"}))
    text = "[fixture draft, quality=flawed] a binary search that misses the empty case"
    return web.json_response({"text": text, "input_tokens": 21, "output_tokens": 13, "model": "drafter-v1-0915"})


def client_metadata() -> tuple[trace.Span, list[tuple[str, str]]]:
    """A real client span from the test's own SDK, and the traceparent metadata a caller would send."""
    tracer = TracerProvider().get_tracer("test-client")
    span = tracer.start_span("client call", kind=SpanKind.CLIENT)
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span))
    return span, list(carrier.items())


def points(reader: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for scope in rm.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out
