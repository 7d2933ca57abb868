"""The decision span (an Around step), one span per model call (a call layer) and the outcome metrics.

Tree: RPC server span → ``policyd.decision`` → ``chat {model}`` per model call.

Where each value comes from, so that it is right:

* the **call layer** (``trace``) sees the Turn, the ModelCall and the ModelResponse:
  gen_ai.* request and response attributes, tokens, finish reasons, ``policyd.cached``,
  errors. It keeps the span current while the provider runs, so provider HTTP calls
  carry its ``traceparent`` (:func:`policyd.telemetry.propagation.inject_headers`). The
  span waits on the Turn (``turn.state``) for its attempt;
* the **attempt** the strategy context records right after the call arrives as an
  :class:`~policyd.engine.turn.AttemptRecorded` event naming the call: it brings
  ``policyd.attempt.index`` and ``policyd.cost_usd``. A VALIDATE call's span stays open,
  with its end time fixed at the call's end, until its verdict is known (the same event
  again, same index); it then gets ``policyd.verdict`` and ends. Spans still open when
  the request ends are ended then;
* the **decision span** (``decision-span``) sees the final Outcome: policy, rule,
  strategy, status, total cost and verdicts go on it, and the Outcome gets the ``trace_id``;
* the **metrics** observer counts every finished turn's outcome, cost and verdicts.

:func:`scrub_attempt` is the pipeline's redaction: attempt error texts (which may quote
an upstream's URL or headers) are scrubbed before they reach the caller, a stream, a
span or a decision event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from policyd.engine.pipeline import CallNext, Finish, Rest, Wrap
from policyd.engine.turn import AttemptRecorded, Observe, Turn, TurnFinished
from policyd.errors import PolicydError, UpstreamError
from policyd.plugin.specs import DeltaSink
from policyd.telemetry import content
from policyd.telemetry import semconv as sc
from policyd.telemetry.metrics import Instruments
from policyd.telemetry.redact import SCRUBBER
from policyd.telemetry.setup import Telemetry
from policyd.types import Attempt, AttemptRole, CacheMode, ModelCall, ModelResponse, Outcome, OutcomeStatus

log = logging.getLogger(__name__)

ERROR_STATUSES = frozenset({OutcomeStatus.UPSTREAM_FAILED, OutcomeStatus.DEADLINE_EXCEEDED})
"""Outcomes that mark the decision span as an error (a rejection is a decision, not a failure)."""


@dataclass
class _CallSpan:
    span: trace.Span
    model_id: str
    role: AttemptRole
    end_ns: int = 0
    index: int | None = None
    open: bool = True

    def end(self) -> None:
        if self.open:
            self.open = False
            self.span.end(end_time=self.end_ns or None)


class _RequestSpans:
    """The call spans of one request: waiting for their attempt (by call), then by attempt index."""

    def __init__(self) -> None:
        self.calls: list[_CallSpan] = []
        self.waiting: dict[int, _CallSpan] = {}
        """By ``id()`` of the ModelCall; the context holds the call until it records the attempt."""
        self.by_index: dict[int, _CallSpan] = {}

    def end_all(self) -> None:
        for cs in self.calls:
            cs.end()


def trace_id_hex(span: trace.Span) -> str:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


def scrub_attempt(attempt: Attempt) -> Attempt:
    if not attempt.error:
        return attempt
    cleaned = SCRUBBER.scrub(attempt.error)
    return attempt if cleaned == attempt.error else replace(attempt, error=cleaned)


class TelemetryLayers:
    """The decision span, the call layer and the observers, sharing one Telemetry."""

    def __init__(self, telemetry: Telemetry, instruments: Instruments | None) -> None:
        self.telemetry = telemetry
        self.tracer = telemetry.tracer()
        self.tracing = telemetry.tracing
        self.instruments = instruments
        self.capture = telemetry.capture_content

    # ------------------------------------------------------------ decision span (Around)

    def decision_step(self) -> Wrap:
        """The ``decision-span`` Around step: :meth:`decision_span`, or with tracing off a
        :class:`~policyd.engine.pipeline.Finish` that only stamps the trace id (the caller's, from its
        ``traceparent``), which the engine runs in line instead of wrapping the rest of the request."""
        return self.decision_span if self.tracing else Finish(self.stamp_trace_id)

    def stamp_trace_id(self, turn: Turn, outcome: Outcome) -> Outcome:
        """The outcome with the current trace's id (with tracing off: the caller's, or none)."""
        return self._finish(outcome, trace.get_current_span())

    async def decision_span(self, turn: Turn, rest: Rest) -> Outcome:
        if not self.tracing:
            return self.stamp_trace_id(turn, await rest())
        spans = _RequestSpans()
        turn.state[self] = spans
        request = turn.request
        attributes = {
            sc.POLICYD_REQUEST_ID: request.request_id,
            sc.POLICYD_TENANT: request.tenant,
            sc.POLICYD_TASK: request.task,
            sc.POLICYD_STAKES: request.stakes.value,
        }
        with self.tracer.start_as_current_span(
            sc.SPAN_DECISION, kind=SpanKind.INTERNAL, attributes=attributes, record_exception=False,
            set_status_on_exception=False,
        ) as span:  # fmt: skip
            try:
                outcome = await rest()
            except BaseException as exc:
                _mark_error(span, exc)
                raise
            finally:
                spans.end_all()
            self._annotate_decision(span, outcome)
            return self._finish(outcome, span)

    def _finish(self, outcome: Outcome, span: trace.Span) -> Outcome:
        trace_id = outcome.trace_id or trace_id_hex(span)
        return outcome if trace_id == outcome.trace_id else replace(outcome, trace_id=trace_id)

    def metrics(self) -> Mapping[type, Observe] | None:
        """The ``metrics`` record step, or None when metrics are off."""
        instruments = self.instruments
        if instruments is None:
            return None

        def finished(event: TurnFinished) -> None:
            instruments.record_outcome(event.outcome)

        return {TurnFinished: finished}

    def _annotate_decision(self, span: trace.Span, outcome: Outcome) -> None:
        e = outcome.explanation
        verdicts = [f"{a.verdict.validator}:{a.verdict.kind.value}" for a in outcome.attempts if a.verdict]
        span.set_attributes(
            {
                sc.POLICYD_POLICY: e.policy,
                sc.POLICYD_POLICY_VERSION: e.policy_version,
                sc.POLICYD_RULE: e.rule,
                sc.POLICYD_STRATEGY: e.strategy,
                sc.POLICYD_OUTCOME: outcome.status.value,
                sc.POLICYD_TOTAL_COST_USD: outcome.total_cost_usd,
                sc.POLICYD_SAVED_USD: outcome.saved_usd,
                sc.POLICYD_ATTEMPT_COUNT: len(outcome.attempts),
                sc.POLICYD_MODELS: list(dict.fromkeys(a.model for a in outcome.attempts if a.model)),
                sc.POLICYD_VERDICTS: verdicts,
                sc.POLICYD_DECISION_ID: outcome.decision_id,
            }
        )
        if outcome.status in ERROR_STATUSES:
            span.set_status(Status(StatusCode.ERROR, outcome.status.value))
            span.set_attribute(sc.ERROR_TYPE, outcome.status.value)

    # ------------------------------------------------------------ attempts (observer)

    def attempt_spans(self) -> Mapping[type, Observe] | None:
        """The ``trace`` record step: binds each recorded attempt to its call's span."""
        return {AttemptRecorded: self.on_attempt} if self.tracing else None

    def on_attempt(self, event: AttemptRecorded) -> None:
        spans = event.turn.state.get(self)
        if spans is None:
            return
        try:
            self._bind(spans, event.attempt, event.call)
        except Exception:
            log.exception("telemetry could not record attempt %d", event.attempt.index)

    def _bind(self, spans: _RequestSpans, attempt: Attempt, call: ModelCall | None) -> None:
        cs = spans.by_index.get(attempt.index)
        if cs is None:
            cs = spans.waiting.pop(id(call), None) if call is not None else None
            if cs is None:
                return  # no call behind this attempt (excluded model, free validator)
            cs.index = attempt.index
            spans.by_index[attempt.index] = cs
        if not cs.open:
            return
        span = cs.span
        span.set_attribute(sc.POLICYD_ATTEMPT_INDEX, attempt.index)
        span.set_attribute(sc.POLICYD_COST_USD, attempt.cost_usd)
        if attempt.error:
            span.set_attribute(sc.POLICYD_ERROR, attempt.error)
        if attempt.verdict is not None:
            span.set_attribute(sc.POLICYD_VERDICT, attempt.verdict.kind.value)
            span.set_attribute(sc.POLICYD_VALIDATOR, attempt.verdict.validator)
            if self.capture and attempt.verdict.reason:
                span.set_attribute(sc.POLICYD_VERDICT_REASON, attempt.verdict.reason)
        if attempt.verdict is not None or attempt.role is not AttemptRole.VALIDATE or attempt.error:
            cs.end()

    # ------------------------------------------------------------ call layer

    async def call_span(self, turn: Turn, call: ModelCall, on_delta: DeltaSink | None, next: CallNext) -> ModelResponse:
        model = call.model
        kind = _provider_kind(turn, model.provider)
        started = time.perf_counter()
        span = self.tracer.start_span(
            sc.call_span_name(sc.OPERATION_CHAT, model.upstream), kind=SpanKind.CLIENT,
            attributes=self._call_attributes(call, kind), record_exception=False, set_status_on_exception=False,
        ) if self.tracing else None  # fmt: skip
        error_type: str | None = None
        response: ModelResponse | None = None
        try:
            if span is None:
                response = await next(turn, call, on_delta)
            else:
                with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                    response = await next(turn, call, on_delta)
                self._annotate_response(span, response)
            return response
        except BaseException as exc:
            error_type = "cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__qualname__
            if span is not None:
                _mark_error(span, exc)
            raise
        finally:
            if self.instruments is not None:
                self._measure(call, kind, response, error_type, time.perf_counter() - started)
            if span is not None:
                self._park(span, call, turn)

    def _call_attributes(self, call: ModelCall, kind: str) -> dict[str, Any]:
        model, params = call.model, call.params
        attrs: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
            sc.GEN_AI_PROVIDER_NAME: sc.gen_ai_provider_name(kind),
            sc.GEN_AI_REQUEST_MODEL: model.upstream,
            sc.GEN_AI_OUTPUT_TYPE: sc.OUTPUT_TYPE_TEXT
            if params.response_format.kind == "text"
            else sc.OUTPUT_TYPE_JSON,
            sc.POLICYD_MODEL: model.id,
            sc.POLICYD_PROVIDER: model.provider,
            sc.POLICYD_ROLE: call.role.value,
            sc.POLICYD_EFFORT: call.effort.value,
        }
        if params.max_output_tokens is not None:
            attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = params.max_output_tokens
        if params.temperature is not None:
            attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = params.temperature
        if params.top_p is not None:
            attrs[sc.GEN_AI_REQUEST_TOP_P] = params.top_p
        if params.stop:
            attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = list(params.stop)
        if params.seed is not None:
            attrs[sc.GEN_AI_REQUEST_SEED] = params.seed
        if call.sample_index:
            attrs[sc.POLICYD_SAMPLE_INDEX] = call.sample_index
        if self.capture:
            attrs[sc.GEN_AI_INPUT_MESSAGES] = content.input_messages(call.messages)
            system = content.system_instructions(call.messages)
            if system is not None:
                attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = system
        return attrs

    def _annotate_response(self, span: trace.Span, response: ModelResponse) -> None:
        attrs: dict[str, Any] = {
            sc.GEN_AI_RESPONSE_FINISH_REASONS: [response.finish_reason],
            sc.GEN_AI_USAGE_INPUT_TOKENS: response.usage.input_tokens,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: response.usage.output_tokens,
            sc.POLICYD_CACHED: response.cached,
        }
        if response.response_model:
            attrs[sc.GEN_AI_RESPONSE_MODEL] = response.response_model
        if response.usage.reasoning_tokens:
            attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = response.usage.reasoning_tokens
        if self.capture:
            attrs[sc.GEN_AI_OUTPUT_MESSAGES] = content.output_messages(response.message, response.finish_reason)
        span.set_attributes(attrs)

    def _park(self, span: trace.Span, call: ModelCall, turn: Turn | None) -> None:
        """Leave the span on the Turn for the attempt observer to finish; end it now if nothing will."""
        cs = _CallSpan(span, call.model.id, call.role, end_ns=time.time_ns())
        spans = turn.state.get(self) if turn is not None else None
        if spans is None:
            cs.end()
            return
        spans.calls.append(cs)
        spans.waiting[id(call)] = cs

    def _measure(
        self, call: ModelCall, kind: str, response: ModelResponse | None, error_type: str | None, seconds: float
    ) -> None:
        inst = self.instruments
        assert inst is not None
        if response is not None and response.cached:
            inst.cache_hits.add(1, {sc.POLICYD_MODEL: call.model.id})
            return
        if response is not None and call.cache_mode is not CacheMode.BYPASS:
            inst.cache_misses.add(1, {sc.POLICYD_MODEL: call.model.id})
        attrs: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
            sc.GEN_AI_PROVIDER_NAME: sc.gen_ai_provider_name(kind),
            sc.GEN_AI_REQUEST_MODEL: call.model.upstream,
        }
        if response is not None and response.response_model:
            attrs[sc.GEN_AI_RESPONSE_MODEL] = response.response_model
        if error_type is not None:
            attrs[sc.ERROR_TYPE] = error_type
        inst.operation_duration.record(seconds, attrs)
        if response is not None:
            inst.token_usage.record(response.usage.input_tokens, {**attrs, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT})
            inst.token_usage.record(response.usage.output_tokens, {**attrs, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT})


def _provider_kind(turn: Turn | None, name: str) -> str:  # None: a layer driven without an engine (tests)
    """The provider instance's kind (``openai``...) in the Turn's config, for gen_ai.provider.name."""
    inst = turn.config.providers.get(name) if turn is not None else None
    return inst.kind if inst is not None else name


def _mark_error(span: trace.Span, exc: BaseException) -> None:
    if isinstance(exc, asyncio.CancelledError):
        span.set_status(Status(StatusCode.ERROR, "cancelled"))
        span.set_attribute(sc.ERROR_TYPE, "cancelled")
        return
    # An upstream's own words (UpstreamError.detail) may quote the prompt: spans get the summary.
    message = exc.summary if isinstance(exc, UpstreamError) else str(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))
    span.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
    if isinstance(exc, PolicydError):
        # An expected failure (upstream error, budget...): its message says it all; a
        # formatted stack trace would cost more than the span itself.
        span.add_event(sc.EVENT_EXCEPTION, {sc.EXCEPTION_TYPE: type(exc).__qualname__, sc.EXCEPTION_MESSAGE: message})
    elif isinstance(exc, Exception):
        span.record_exception(exc)
