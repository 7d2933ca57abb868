"""Protobuf ⇄ domain translation, with request validation that names the field at fault.

Kept free of any decision: the servicer calls :func:`request_from_proto`, hands the
domain Request to the engine and turns the Outcome back with :func:`outcome_to_proto`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Collection, Mapping
from typing import Any

from policyd.errors import InvalidArgument
from policyd.ids import new_id
from policyd.types import (
    Attempt,
    AttemptRole,
    CacheMode,
    Constraints,
    Effort,
    Explanation,
    GenerationParams,
    Message,
    ModelSpec,
    Outcome,
    OutcomeStatus,
    Request,
    ResponseFormat,
    Role,
    Stakes,
    Tool,
    ToolCall,
    ToolChoice,
    VerdictKind,
)
from policyd.v1 import policyd_pb2 as pb

MAX_STOP_SEQUENCES = 4
DEFAULT_PARAMS = GenerationParams()
DEFAULT_CONSTRAINTS = Constraints()
"""What an absent ``params`` / ``constraints`` message means (shared: most requests send neither)."""

_ROLES = {
    pb.ROLE_SYSTEM: Role.SYSTEM,
    pb.ROLE_USER: Role.USER,
    pb.ROLE_ASSISTANT: Role.ASSISTANT,
    pb.ROLE_TOOL: Role.TOOL,
}
_ROLES_BACK = {v: k for k, v in _ROLES.items()}
_STAKES = {
    pb.STAKES_UNSPECIFIED: Stakes.NORMAL,
    pb.STAKES_LOW: Stakes.LOW,
    pb.STAKES_NORMAL: Stakes.NORMAL,
    pb.STAKES_HIGH: Stakes.HIGH,
    pb.STAKES_CRITICAL: Stakes.CRITICAL,
}
_CACHE_MODES = {
    pb.CACHE_MODE_UNSPECIFIED: CacheMode.DEFAULT,
    pb.CACHE_MODE_BYPASS: CacheMode.BYPASS,
    pb.CACHE_MODE_REFRESH: CacheMode.REFRESH,
    pb.CACHE_MODE_ONLY_IF_CACHED: CacheMode.ONLY_IF_CACHED,
}
_TOOL_CHOICES = {
    pb.ToolChoice.MODE_AUTO: "auto",
    pb.ToolChoice.MODE_NONE: "none",
    pb.ToolChoice.MODE_REQUIRED: "required",
    pb.ToolChoice.MODE_FUNCTION: "function",
}
_FORMATS = {
    pb.ResponseFormat.KIND_UNSPECIFIED: "text",
    pb.ResponseFormat.KIND_TEXT: "text",
    pb.ResponseFormat.KIND_JSON_OBJECT: "json_object",
    pb.ResponseFormat.KIND_JSON_SCHEMA: "json_schema",
}
EFFORT_TO_PB = {
    Effort.OFF: pb.EFFORT_OFF,
    Effort.LOW: pb.EFFORT_LOW,
    Effort.MEDIUM: pb.EFFORT_MEDIUM,
    Effort.HIGH: pb.EFFORT_HIGH,
}
STATUS_TO_PB = {
    OutcomeStatus.ACCEPTED: pb.OUTCOME_STATUS_ACCEPTED,
    OutcomeStatus.ACCEPTED_UNVALIDATED: pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED,
    OutcomeStatus.REJECTED: pb.OUTCOME_STATUS_REJECTED,
    OutcomeStatus.BUDGET_EXHAUSTED: pb.OUTCOME_STATUS_BUDGET_EXHAUSTED,
    OutcomeStatus.DEADLINE_EXCEEDED: pb.OUTCOME_STATUS_DEADLINE_EXCEEDED,
    OutcomeStatus.UPSTREAM_FAILED: pb.OUTCOME_STATUS_UPSTREAM_FAILED,
}
ROLE_TO_PB = {
    AttemptRole.ANSWER: pb.ATTEMPT_ROLE_ANSWER,
    AttemptRole.DRAFT: pb.ATTEMPT_ROLE_DRAFT,
    AttemptRole.VALIDATE: pb.ATTEMPT_ROLE_VALIDATE,
    AttemptRole.REPAIR: pb.ATTEMPT_ROLE_REPAIR,
    AttemptRole.ESCALATE: pb.ATTEMPT_ROLE_ESCALATE,
}
VERDICT_TO_PB = {
    VerdictKind.ACCEPT: pb.Verdict.KIND_ACCEPT,
    VerdictKind.REJECT: pb.Verdict.KIND_REJECT,
    VerdictKind.REPAIR: pb.Verdict.KIND_REPAIR,
    VerdictKind.MALFORMED: pb.Verdict.KIND_MALFORMED,
}


# ---------------------------------------------------------------- proto → domain


def _json_object(text: str, field: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(field, f"not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(value, dict):
        raise InvalidArgument(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def _finite(value: float, field: str, low: float, high: float, *, low_open: bool = False) -> float:
    if not math.isfinite(value):
        raise InvalidArgument(field, f"must be a finite number (got {value})")
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise InvalidArgument(field, f"must be in {bracket}{low}, {high}] (got {value})")
    return value


def _message(m: pb.Message, i: int) -> Message:
    role = _ROLES.get(m.role)
    if role is None:
        raise InvalidArgument(f"messages[{i}].role", "must be one of system, user, assistant, tool (ROLE_*)")
    calls = _tool_calls(m.tool_calls, role, i) if m.tool_calls else ()
    tool_call_id = m.tool_call_id
    if role is Role.TOOL and not tool_call_id:
        raise InvalidArgument(f"messages[{i}].tool_call_id", "is required for a tool message")
    content = m.content
    if not content and not calls and role is not Role.TOOL:
        raise InvalidArgument(f"messages[{i}].content", "is empty")
    return Message(role, content, calls, tool_call_id, m.name)


def _tool_calls(tool_calls: Any, role: Role, i: int) -> tuple[ToolCall, ...]:
    field = f"messages[{i}].tool_calls"
    if role is not Role.ASSISTANT:
        raise InvalidArgument(field, "only assistant messages carry tool calls")
    calls = []
    for j, c in enumerate(tool_calls):
        if not c.name:
            raise InvalidArgument(f"{field}[{j}].name", "is required")
        if c.arguments_json:
            _json_object(c.arguments_json, f"{field}[{j}].arguments_json")
        calls.append(ToolCall(id=c.id, name=c.name, arguments_json=c.arguments_json or "{}"))
    return tuple(calls)


def _tools(tools: Any) -> tuple[Tool, ...]:
    out: list[Tool] = []
    seen: set[str] = set()
    for i, t in enumerate(tools):
        if not t.name:
            raise InvalidArgument(f"tools[{i}].name", "is required")
        if t.name in seen:
            raise InvalidArgument(f"tools[{i}].name", f"duplicate tool name {t.name!r}")
        seen.add(t.name)
        schema = (
            _json_object(t.parameters_json_schema, f"tools[{i}].parameters_json_schema")
            if t.parameters_json_schema
            else {}
        )
        out.append(Tool(name=t.name, description=t.description, parameters=schema))
    return tuple(out)


def _params(p: pb.GenerationParams) -> GenerationParams:
    max_tokens = None
    if p.HasField("max_output_tokens"):
        if p.max_output_tokens <= 0:
            raise InvalidArgument("params.max_output_tokens", f"must be positive (got {p.max_output_tokens})")
        max_tokens = p.max_output_tokens
    temperature = _finite(p.temperature, "params.temperature", 0.0, 2.0) if p.HasField("temperature") else None
    top_p = _finite(p.top_p, "params.top_p", 0.0, 1.0, low_open=True) if p.HasField("top_p") else None
    if len(p.stop) > MAX_STOP_SEQUENCES:
        raise InvalidArgument("params.stop", f"at most {MAX_STOP_SEQUENCES} stop sequences (got {len(p.stop)})")
    if any(not s for s in p.stop):
        raise InvalidArgument("params.stop", "stop sequences must not be empty")
    kind = _FORMATS.get(p.response_format.kind)
    if kind is None:
        raise InvalidArgument("params.response_format.kind", f"unknown value {p.response_format.kind}")
    schema = None
    if kind == "json_schema":
        if not p.response_format.json_schema:
            raise InvalidArgument("params.response_format.json_schema", "is required for KIND_JSON_SCHEMA")
        schema = _json_object(p.response_format.json_schema, "params.response_format.json_schema")
    return GenerationParams(
        max_output_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        stop=tuple(p.stop),
        response_format=ResponseFormat(kind=kind, json_schema=schema, schema_name=p.response_format.schema_name),
        seed=p.seed if p.HasField("seed") else None,
        tool_choice=_tool_choice(p.tool_choice) if p.HasField("tool_choice") else None,
    )


def _tool_choice(c: pb.ToolChoice) -> ToolChoice | None:
    if c.mode == pb.ToolChoice.MODE_UNSPECIFIED and not c.function_name:
        return None
    mode = _TOOL_CHOICES.get(c.mode)
    if mode is None:
        raise InvalidArgument("params.tool_choice.mode", f"unknown value {c.mode}")
    if (mode == "function") != bool(c.function_name):
        problem = "is required for MODE_FUNCTION" if mode == "function" else "is only for MODE_FUNCTION"
        raise InvalidArgument("params.tool_choice.function_name", problem)
    return ToolChoice(mode=mode, function=c.function_name)


def _check_tool_choice(params: GenerationParams, tools: tuple[Tool, ...]) -> None:
    choice = params.tool_choice
    if choice is None or choice.mode in ("auto", "none"):
        return
    if not tools:
        raise InvalidArgument("params.tool_choice", f"{choice.mode!r} needs tools, and the request has none")
    names = [t.name for t in tools]
    if choice.mode == "function" and choice.function not in names:
        raise InvalidArgument(
            "params.tool_choice.function_name", f"{choice.function!r} is not one of the tools ({', '.join(names)})"
        )


def _constraints(c: pb.Constraints) -> Constraints:
    max_cost = None
    if c.HasField("max_cost_usd"):
        if not math.isfinite(c.max_cost_usd) or c.max_cost_usd <= 0:
            raise InvalidArgument("constraints.max_cost_usd", f"must be a positive number (got {c.max_cost_usd})")
        max_cost = c.max_cost_usd
    return Constraints(
        allowed_licenses=frozenset(c.allowed_licenses),
        local_only=c.local_only,
        max_cost_usd=max_cost,
        allowed_models=frozenset(c.allowed_models),
        denied_models=frozenset(c.denied_models),
    )


def request_from_proto(
    msg: pb.CompleteRequest,
    *,
    tenant: str,
    deadline: float | None,
) -> Request:
    """Validate and translate. ``tenant`` and ``deadline`` come from the call, not the body.

    Field names are formatted only for an error: most requests are valid, and a request's
    conversion is on every miss's path."""
    if not msg.messages:
        raise InvalidArgument("messages", "at least one message is required")
    messages = tuple([_message(m, i) for i, m in enumerate(msg.messages)])
    stakes = _STAKES.get(msg.stakes)
    if stakes is None:
        raise InvalidArgument("stakes", f"unknown value {msg.stakes}")
    cache_mode = _CACHE_MODES.get(msg.cache_mode)
    if cache_mode is None:
        raise InvalidArgument("cache_mode", f"unknown value {msg.cache_mode}")
    labels = dict(msg.labels) if msg.labels else {}
    if "" in labels:
        raise InvalidArgument("labels", "label keys must not be empty")
    tools = _tools(msg.tools) if msg.tools else ()
    params = DEFAULT_PARAMS
    if msg.HasField("params"):
        params = _params(msg.params)
        _check_tool_choice(params, tools)
    return Request(
        msg.request_id or new_id(),
        messages,
        tools,
        params,
        msg.task,
        stakes,
        labels,
        _constraints(msg.constraints) if msg.HasField("constraints") else DEFAULT_CONSTRAINTS,
        cache_mode,
        msg.policy,
        tenant,
        deadline,
    )


ANSWER_MARGIN_FRACTION = 0.05
ANSWER_MARGIN_MIN_S = 0.020
ANSWER_MARGIN_MAX_S = 0.250


def answer_margin_s(time_remaining: float) -> float:
    """How long before the caller's deadline the daemon answers: 5 % of it, 20 ms to 250 ms.

    A DEADLINE_EXCEEDED answer (attempts made, cost spent) sent at the deadline itself races
    the caller's own timer and is lost about half the time; this margin lets it arrive first.
    """
    return min(ANSWER_MARGIN_MAX_S, max(ANSWER_MARGIN_MIN_S, ANSWER_MARGIN_FRACTION * time_remaining))


def deadline_from(time_remaining: float | None, default_ms: int, max_ms: int) -> float:
    """An absolute monotonic deadline: the caller's less the answer margin, else the default, never
    past the maximum."""
    if time_remaining is None:
        seconds = default_ms / 1000
    else:  # the margin of answer_margin_s, inlined: every request's deadline passes here
        margin = ANSWER_MARGIN_FRACTION * time_remaining
        margin = ANSWER_MARGIN_MAX_S if margin > ANSWER_MARGIN_MAX_S else max(ANSWER_MARGIN_MIN_S, margin)
        seconds = max(0.0, time_remaining - margin)
    return time.monotonic() + min(seconds, max_ms / 1000)


# ---------------------------------------------------------------- domain → proto


# Responses are built in place: each field set on the message that carries it. A sub-message
# given to a constructor (or to CopyFrom) is built first and then copied into its parent; on
# the hot path that doubled the cost of a response (~20 µs → ~8 µs for a one-attempt answer).


def _fill_message(out: pb.Message, m: Message) -> None:
    out.role = _ROLES_BACK[m.role]
    out.content = m.content
    for c in m.tool_calls:
        out.tool_calls.add(id=c.id, name=c.name, arguments_json=c.arguments_json)
    out.tool_call_id = m.tool_call_id
    out.name = m.name


def message_to_proto(m: Message) -> pb.Message:
    out = pb.Message()
    _fill_message(out, m)
    return out


def _fill_attempt(out: pb.Attempt, a: Attempt) -> None:
    out.index = a.index
    out.role = ROLE_TO_PB[a.role]
    out.model = a.model
    out.provider = a.provider
    out.effort = EFFORT_TO_PB[a.effort]
    out.input_tokens = a.input_tokens
    out.output_tokens = a.output_tokens
    out.cost_usd = a.cost_usd
    out.latency_ms = a.latency_ms
    out.cached = a.cached
    out.error = f"{a.error}: {a.error_detail}" if a.error_detail else a.error
    out.saved_usd = a.saved_usd
    out.usage_estimated = a.usage_estimated
    out.finish_reason = a.finish_reason
    if a.output is not None:
        _fill_message(out.output, a.output)
    v = a.verdict
    if v is not None:
        verdict = out.verdict
        verdict.kind = VERDICT_TO_PB[v.kind]
        verdict.reason = v.reason
        verdict.validator = v.validator


def attempt_to_proto(a: Attempt) -> pb.Attempt:
    out = pb.Attempt()
    _fill_attempt(out, a)
    return out


EXPLANATIONS_KEPT = 256
_explained: dict[int, tuple[Explanation, bytes | None]] = {}
"""The wire bytes of explanations seen more than once, by identity. Explanations are frozen, and a
strategy registered ``estimates_only`` answers every request of a rule with the same one
(:mod:`policyd.engine.explain`): parsing its bytes (~0.5 µs) replaces setting its fields one by one
(~7 µs). An explanation seen once is remembered without bytes, so one made per request (any other
strategy, or one with the request's warnings) costs a lookup and never a serialization."""


def _fill_explanation(out: pb.Explanation, e: Explanation) -> None:
    known = _explained.get(id(e))
    if known is not None and known[0] is e:  # the memo holds ``e``: its id is not reused meanwhile
        if known[1] is not None:
            out.MergeFromString(known[1])
            return
        _set_explanation(out, e)
        _explained[id(e)] = (e, out.SerializeToString())
        return
    _set_explanation(out, e)
    if len(_explained) >= EXPLANATIONS_KEPT:
        del _explained[next(iter(_explained))]  # the oldest
    _explained[id(e)] = (e, None)


def _set_explanation(out: pb.Explanation, e: Explanation) -> None:
    out.policy = e.policy
    out.rule = e.rule
    out.strategy = e.strategy
    out.reason = e.reason
    out.models.extend(e.models)
    for s in e.steps:
        out.steps.add(
            role=s.role,
            model=s.model,
            effort=EFFORT_TO_PB[s.effort],
            validator=s.validator,
            estimated_cost_usd=s.estimated_cost_usd,
            reason=s.reason,
            best_cost_usd=s.estimated_cost_usd if s.best_cost_usd is None else s.best_cost_usd,
        )
    cost = out.estimated_cost
    cost.best_usd = e.best_usd
    cost.worst_usd = e.worst_usd
    out.warnings.extend(e.warnings)
    out.policy_version = e.policy_version


def explanation_to_proto(e: Explanation) -> pb.Explanation:
    out = pb.Explanation()
    _fill_explanation(out, e)
    return out


def outcome_to_proto(o: Outcome) -> pb.CompleteResponse:
    resp = pb.CompleteResponse(
        request_id=o.request_id,
        status=STATUS_TO_PB[o.status],
        total_cost_usd=o.total_cost_usd,
        trace_id=o.trace_id,
        saved_usd=o.saved_usd,
        tokens_saved=o.tokens_saved,
        decision_id=o.decision_id,
    )
    attempts = resp.attempts
    for a in o.attempts:
        _fill_attempt(attempts.add(), a)
    _fill_explanation(resp.explanation, o.explanation)
    if o.output is not None:
        _fill_message(resp.output, o.output)
    return resp


def unservable_reason(m: ModelSpec, providers: Collection[str]) -> str:
    """Why the daemon cannot call ``m`` (its provider is not configured), or "" when it can."""
    return "" if m.provider in providers else f"provider {m.provider!r} is not configured"


def model_to_proto(m: ModelSpec, providers: Collection[str] = ()) -> pb.Model:
    return pb.Model(
        id=m.id,
        provider=m.provider,
        upstream=m.upstream,
        input_usd_per_mtok=m.input_usd_per_mtok,
        output_usd_per_mtok=m.output_usd_per_mtok,
        context_window=m.context_window,
        license=m.license,
        tags=sorted(m.tags),
        thinking=m.thinking,
        local=m.local,
        unservable_reason=unservable_reason(m, providers),
    )


def models_to_proto(
    models: Mapping[str, ModelSpec],
    providers: Collection[str],
    request: pb.ListModelsRequest,
) -> pb.ListModelsResponse:
    """The catalog as ListModels answers it: filtered, and without unservable models unless asked."""
    chosen = [
        model_to_proto(m, providers)
        for m in models.values()
        if (not request.provider or m.provider == request.provider)
        and (not request.tag or request.tag in m.tags)
        and (request.include_unservable or m.provider in providers)
    ]
    return pb.ListModelsResponse(models=chosen)


def provisional_verdict(confirmed: bool, reason: str) -> pb.ProvisionalVerdict:
    """The verdict on a stream's provisional draft text (``stream_draft: provisional``)."""
    return pb.ProvisionalVerdict(confirmed=confirmed, reason="" if confirmed else reason)
