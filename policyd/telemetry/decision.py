"""The versioned decision event, and the queue that hands it to the sinks off the request path.

Like OPA's decision log: one event per finished request, saying what was decided
and why, what it cost and which fields were masked. Its schema is versioned
(``schema_version``); fields are only ever added within a version.

The outcome listener only puts ``(request, outcome)`` on a bounded queue; a worker
thread builds the event and calls each sink. A full queue drops the event and counts
it (``policyd.decisions.dropped``): a slow sink never slows an answer.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry import metrics

from policyd.engine.turn import Observe, TurnFinished
from policyd.plugin.specs import DecisionSink
from policyd.telemetry import content
from policyd.telemetry import semconv as sc
from policyd.telemetry.redact import SCRUBBER
from policyd.types import Attempt, Outcome, Request

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
EVENT_TYPE = sc.EVENT_DECISION


def _attempt(a: Attempt, capture: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": a.index,
        "role": a.role.value,
        "model": a.model,
        "provider": a.provider,
        "effort": a.effort.value,
        "input_tokens": a.input_tokens,
        "output_tokens": a.output_tokens,
        "cost_usd": a.cost_usd,
        "latency_ms": round(a.latency_ms, 3),
        "cached": a.cached,
        "finish_reason": a.finish_reason,
        "error": SCRUBBER.scrub(a.error),
        "verdict": None,
    }
    if a.verdict is not None:
        out["verdict"] = {
            "kind": a.verdict.kind.value,
            "validator": a.verdict.validator,
            "reason": a.verdict.reason if capture else "",
        }
    return out


def build_event(
    request: Request, outcome: Outcome, *, capture: bool, span_id: str = "", timestamp: float | None = None
) -> dict[str, Any]:
    """The decision event for one finished request, scrubbed, content only with ``capture``."""
    e = outcome.explanation
    masked: list[str] = []
    labels: dict[str, str] = {}
    for key, value in request.labels.items():
        clean = SCRUBBER.scrub(value)
        if clean != value:
            masked.append(f"labels.{key}")
        labels[key] = clean
    attempts = [_attempt(a, capture) for a in outcome.attempts]
    if not capture:
        masked += ["input.messages", "output"]
        if any(a.verdict and a.verdict.reason for a in outcome.attempts):
            masked.append("attempts.verdict.reason")
    event: dict[str, Any] = {
        "type": EVENT_TYPE,
        "schema_version": SCHEMA_VERSION,
        "timestamp": datetime.fromtimestamp(timestamp or time.time(), UTC).isoformat(timespec="milliseconds"),
        "decision_id": outcome.decision_id,
        "trace_id": outcome.trace_id,
        "span_id": span_id,
        "request_id": outcome.request_id,
        "tenant": outcome.tenant,
        "task": outcome.task,
        "stakes": request.stakes.value,
        "labels": labels,
        "policy": e.policy,
        "policy_version": e.policy_version,
        "rule": e.rule,
        "strategy": e.strategy,
        "reason": e.reason,
        "status": outcome.status.value,
        "models": list(dict.fromkeys(a.model for a in outcome.attempts if a.model)),
        "verdicts": [a["verdict"] | {"attempt": a["index"]} for a in attempts if a["verdict"]],
        "attempts": attempts,
        "cost_usd": outcome.total_cost_usd,
        "saved_usd": outcome.saved_usd,
        "tokens_saved": outcome.tokens_saved,
        "latency_ms": round(outcome.latency_ms, 3),
        "masked": masked,
    }
    if capture:
        event["input"] = {"messages": content.message_dicts(request.messages)}
        event["output"] = content.message_dicts((outcome.output,))[0] if outcome.output else None
    return event


_STOP = object()


class DecisionLog:
    """The outcome listener that feeds decision events to sinks from one worker thread."""

    def __init__(
        self,
        sinks: Sequence[tuple[str, DecisionSink]],
        *,
        capture: bool,
        queue_size: int = 10_000,
        meter: metrics.Meter | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.capture = capture
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.dropped = 0
        counter = (meter or metrics.NoOpMeter("policyd")).create_counter(sc.METRIC_DECISIONS_DROPPED, unit="{event}")
        self._dropped_counter = counter
        self._thread = threading.Thread(target=self._work, name="policyd-decision-sinks", daemon=True)
        self._thread.start()

    def observer(self) -> Mapping[type, Observe]:
        """The ``decision-log`` record step."""
        return {TurnFinished: self.record}

    def record(self, event: TurnFinished) -> None:
        self(event.turn.received, event.outcome)

    def __call__(self, request: Request, outcome: Outcome) -> None:
        """The outcome listener: never blocks."""
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        span_id = format(ctx.span_id, "016x") if ctx.is_valid else ""
        try:
            self.queue.put_nowait((request, outcome, span_id, time.time()))
        except queue.Full:
            self.dropped += 1
            self._dropped_counter.add(1)
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("decision sinks are behind: %d decision events dropped so far", self.dropped)

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is _STOP:
                    return
                request, outcome, span_id, ts = item
                event = build_event(request, outcome, capture=self.capture, span_id=span_id, timestamp=ts)
                self._emit(event)
            finally:
                self.queue.task_done()

    def _emit(self, event: Mapping[str, Any]) -> None:
        for name, sink in self.sinks:
            try:
                sink.emit(event)
            except Exception:
                log.exception("decision sink %s failed", name)

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout_s``), then close every sink."""
        try:
            self.queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            log.warning("decision sinks did not drain; %d events lost", self.queue.qsize())
        self._thread.join(timeout_s)
        for name, sink in self.sinks:
            try:
                sink.close()
            except Exception:
                log.exception("decision sink %s failed to close", name)
