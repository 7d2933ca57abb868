"""OpenAI Chat Completions body → domain Request, validated with OpenAI's field names.

Kept free of any decision, like :mod:`policyd.server.convert`: ``model`` only names
the policy (or, for a catalog model id, narrows the request's allowed models so the
policy's own rules decide whether a direct call is allowed). Every error is an
:class:`~policyd.errors.InvalidArgument` naming the field (``messages[2].content[0].type``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

import orjson

from policyd.config import Config
from policyd.config.security import LimitsConfig
from policyd.errors import InvalidArgument, NotFound
from policyd.server.openai.intent import Intent
from policyd.types import (
    Constraints,
    GenerationParams,
    Message,
    Request,
    ResponseFormat,
    Role,
    Tool,
    ToolCall,
    ToolChoice,
)

MAX_STOP_SEQUENCES = 4
POLICY_PREFIX = "policyd/"
EFFORT_LABEL = "reasoning_effort"
TOOL_CHOICE_LABEL = "tool_choice"
_ROLES = {
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "user": Role.USER,
    "assistant": Role.ASSISTANT,
    "tool": Role.TOOL,
}
_EFFORTS = {"none": "off", "minimal": "low", "low": "low", "medium": "medium", "high": "high"}
_FORMATS = ("text", "json_object", "json_schema")
_PARAM_KEYS = ("max_completion_tokens", "max_tokens", "temperature", "top_p", "stop", "response_format", "seed")
_NO_PARAMS = GenerationParams()
"""What a body that sets none of ``_PARAM_KEYS`` asks for (frozen, so one instance serves them all)."""
_NO_CONSTRAINTS = Constraints()


@dataclass(frozen=True)
class Target:
    """What ``model`` named: a policy, or a catalog model called directly under a policy."""

    policy: str
    model: str = ""


def resolve_model(config: Config, model: Any, intent: Intent) -> Target:
    """``policyd``, ``<policy>``, ``policyd/<policy>`` or a catalog model id (direct call)."""
    if not isinstance(model, str) or not model:
        raise InvalidArgument("model", "is required: a policy name, 'policyd/<policy>' or a catalog model id")
    if model == "policyd":
        return Target(policy=intent.policy or config.defaults.policy)
    name = model[len(POLICY_PREFIX) :] if model.startswith(POLICY_PREFIX) else model
    if name in config.policies:
        return Target(policy=name)
    if model in config.catalog:
        return Target(policy=intent.policy or config.defaults.policy, model=model)
    raise NotFound(
        f"model {model!r} is neither a policy ({', '.join(sorted(config.policies))}) nor a catalog model id; "
        "GET /v1/models lists both"
    )


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(where, f"must be an object (got {type(value).__name__})")
    return value


def _str(value: Any, where: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidArgument(where, "is required (a non-empty string)" if required else "must be a string")
    return value


def _number(value: Any, where: str, low: float, high: float, *, low_open: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(where, f"must be a finite number (got {value!r})")
    if value < low or value > high or (low_open and value == low):
        raise InvalidArgument(where, f"must be in {'(' if low_open else '['}{low}, {high}] (got {value})")
    return float(value)


def _int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(where, f"must be an integer (got {value!r})")
    return value


def _content(value: Any, where: str) -> str:
    """A string, or a list of text parts (joined); other part types are refused by name."""
    if value is None or isinstance(value, str):
        return value or ""
    if not isinstance(value, list):
        raise InvalidArgument(where, "must be a string or a list of content parts")
    texts = []
    for i, part in enumerate(value):
        part = _obj(part, f"{where}[{i}]")
        kind = part.get("type")
        if kind not in ("text", "refusal"):
            raise InvalidArgument(f"{where}[{i}].type", f"only text parts are supported (got {kind!r})")
        texts.append(_str(part.get(kind), f"{where}[{i}].{kind}"))
    return "".join(texts)


def _arguments(value: Any, where: str) -> str:
    text = _str(value, where) or "{}"
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(where, f"not valid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise InvalidArgument(where, f"must be a JSON object, got {type(parsed).__name__}")
    return text


def _tool_calls(value: Any, where: str) -> tuple[ToolCall, ...]:
    if not isinstance(value, list):
        raise InvalidArgument(where, "must be a list")
    calls = []
    for j, call in enumerate(value):
        call = _obj(call, f"{where}[{j}]")
        fn = _obj(call.get("function"), f"{where}[{j}].function")
        name = _str(fn.get("name"), f"{where}[{j}].function.name", required=True)
        args = _arguments(fn.get("arguments"), f"{where}[{j}].function.arguments")
        calls.append(ToolCall(id=_str(call.get("id"), f"{where}[{j}].id"), name=name, arguments_json=args))
    return tuple(calls)


def _message(m: Any, i: int) -> Message:
    if type(m) is dict and len(m) == 2 and type(content := m.get("content")) is str and content:
        role = _ROLES.get(cast(str, m.get("role")))  # the common {"role", "content"} message: nothing else to check
        if role is not None and role is not Role.TOOL:
            return Message(role=role, content=content)
    where = f"messages[{i}]"
    m = _obj(m, where)
    role = _ROLES.get(m.get("role"))
    if role is None:
        raise InvalidArgument(f"{where}.role", f"must be one of {', '.join(_ROLES)} (got {m.get('role')!r})")
    content = _content(m.get("content"), f"{where}.content")
    calls: tuple[ToolCall, ...] = ()
    if m.get("tool_calls"):
        if role is not Role.ASSISTANT:
            raise InvalidArgument(f"{where}.tool_calls", "only assistant messages carry tool calls")
        calls = _tool_calls(m["tool_calls"], f"{where}.tool_calls")
    tool_call_id = _str(m.get("tool_call_id"), f"{where}.tool_call_id")
    if role is Role.TOOL and not tool_call_id:
        raise InvalidArgument(f"{where}.tool_call_id", "is required for a tool message")
    if not content and not calls and role is not Role.TOOL:
        raise InvalidArgument(f"{where}.content", "is empty")
    name = _str(m.get("name"), f"{where}.name")
    return Message(role=role, content=content, tool_calls=calls, tool_call_id=tool_call_id, name=name)


def _tools(value: Any, choice: Any) -> tuple[tuple[Tool, ...], ToolChoice | None]:
    """The tools offered and how the model may use them (carried to every provider's wire format)."""
    if value is None:
        if choice not in (None, "auto", "none"):
            raise InvalidArgument("tool_choice", "needs tools")
        return (), None
    if not isinstance(value, list):
        raise InvalidArgument("tools", "must be a list")
    tools: list[Tool] = []
    seen: set[str] = set()
    for i, t in enumerate(value):
        t = _obj(t, f"tools[{i}]")
        if t.get("type", "function") != "function":
            raise InvalidArgument(f"tools[{i}].type", f"only 'function' tools are supported (got {t.get('type')!r})")
        fn = _obj(t.get("function"), f"tools[{i}].function")
        name = _str(fn.get("name"), f"tools[{i}].function.name", required=True)
        if name in seen:
            raise InvalidArgument(f"tools[{i}].function.name", f"duplicate tool name {name!r}")
        seen.add(name)
        params = _obj(fn.get("parameters") or {}, f"tools[{i}].function.parameters")
        description = _str(fn.get("description"), f"tools[{i}].function.description")
        tools.append(Tool(name=name, description=description, parameters=params))
    return tuple(tools), _tool_choice(choice, seen)


def _tool_choice(choice: Any, names: set[str]) -> ToolChoice | None:
    """OpenAI's ``tool_choice`` as the domain's: ``auto``, ``none``, ``required`` or one named function."""
    if choice is None:
        return None
    if choice in ("auto", "none", "required"):
        return ToolChoice(mode=choice)
    if isinstance(choice, str):
        raise InvalidArgument("tool_choice", f"must be auto, none, required or a function (got {choice!r})")
    named = _str(_obj(_obj(choice, "tool_choice").get("function"), "tool_choice.function").get("name"), "tool_choice")
    if named not in names:
        raise InvalidArgument("tool_choice.function.name", f"names no tool in tools (got {named!r})")
    return ToolChoice(mode="function", function=named)


def _response_format(value: Any) -> ResponseFormat:
    if value is None:
        return ResponseFormat()
    value = _obj(value, "response_format")
    kind = value.get("type")
    if kind not in _FORMATS:
        raise InvalidArgument("response_format.type", f"must be one of {', '.join(_FORMATS)} (got {kind!r})")
    if kind != "json_schema":
        return ResponseFormat(kind=kind)
    spec = _obj(value.get("json_schema"), "response_format.json_schema")
    schema = _obj(spec.get("schema"), "response_format.json_schema.schema")
    return ResponseFormat(kind=kind, json_schema=schema, schema_name=_str(spec.get("name"), "json_schema.name"))


def _stop(value: Any) -> tuple[str, ...]:
    stops = [value] if isinstance(value, str) else value if value is not None else []
    if not isinstance(stops, list) or any(not isinstance(s, str) or not s for s in stops):
        raise InvalidArgument("stop", "must be a non-empty string or a list of them")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidArgument("stop", f"at most {MAX_STOP_SEQUENCES} stop sequences (got {len(stops)})")
    return tuple(stops)


def _params(body: Mapping[str, Any], limits: LimitsConfig) -> GenerationParams:
    if all(body.get(key) is None for key in _PARAM_KEYS):
        return _NO_PARAMS
    field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _int(body.get(field), field)
    if max_tokens is not None and not 0 < max_tokens <= limits.max_output_tokens:
        raise InvalidArgument(field, f"must be from 1 to {limits.max_output_tokens} (got {max_tokens})")
    return GenerationParams(
        max_output_tokens=max_tokens,
        temperature=_number(body.get("temperature"), "temperature", 0.0, 2.0),
        top_p=_number(body.get("top_p"), "top_p", 0.0, 1.0, low_open=True),
        stop=_stop(body.get("stop")),
        response_format=_response_format(body.get("response_format")),
        seed=_int(body.get("seed"), "seed"),
    )


def _extra_labels(body: Mapping[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = {}
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in _EFFORTS:
            raise InvalidArgument("reasoning_effort", f"must be one of {', '.join(_EFFORTS)} (got {effort!r})")
        labels[EFFORT_LABEL] = _EFFORTS[effort]
    if body.get("user") is not None:
        labels["user"] = _str(body["user"], "user")
    return labels


def metadata_of(body: Mapping[str, Any]) -> dict[str, str]:
    meta = body.get("metadata")
    if meta is None:
        return {}
    meta = _obj(meta, "metadata")
    for key, value in meta.items():
        if not isinstance(value, str):
            raise InvalidArgument(f"metadata.{key}", f"must be a string (got {type(value).__name__})")
    return meta


def _messages(value: Any, limits: LimitsConfig) -> tuple[Message, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidArgument("messages", "at least one message is required")
    if len(value) > limits.max_messages:
        raise InvalidArgument("messages", f"at most {limits.max_messages} messages (got {len(value)})")
    return tuple(_message(m, i) for i, m in enumerate(value))


def _constraints(intent: Intent, target: Target) -> Constraints:
    if intent.max_cost_usd is None and not target.model:
        return _NO_CONSTRAINTS
    return Constraints(
        max_cost_usd=intent.max_cost_usd,
        allowed_models=frozenset((target.model,)) if target.model else frozenset(),
    )


def request_from_body(
    body: Mapping[str, Any],
    intent: Intent,
    target: Target,
    *,
    limits: LimitsConfig,
    request_id: str,
    tenant: str,
    deadline: float,
) -> Request:
    """Validate and translate; ``tenant`` and ``deadline`` come from the transport, not the body."""
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidArgument("n", f"only n=1 is supported (got {n!r})")
    tools, choice = _tools(body.get("tools"), body.get("tool_choice"))
    if len(tools) > limits.max_tools:
        raise InvalidArgument("tools", f"at most {limits.max_tools} tools (got {len(tools)})")
    labels = {**intent.labels, **_extra_labels(body)}
    if choice is not None and choice.mode != "auto":
        labels[TOOL_CHOICE_LABEL] = choice.mode  # rules may route on it too
    params = _params(body, limits)
    return Request(
        request_id=request_id,
        messages=_messages(body.get("messages"), limits),
        tools=tools,
        params=replace(params, tool_choice=choice) if choice is not None else params,
        task=intent.task,
        stakes=intent.stakes,
        labels=labels,
        constraints=_constraints(intent, target),
        cache_mode=intent.cache_mode,
        policy=target.policy,
        tenant=tenant,
        deadline=deadline,
    )
