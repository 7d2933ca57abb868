"""``json-schema``: a free, deterministic gate on structured output and tool calls.

``target`` says what is checked:

* ``tool_calls`` — every tool call's arguments against its tool's ``parameters`` schema
  (or ``schema`` when given); a text answer passes unless ``require_tool_call``;
* ``content`` — the answer text parsed as JSON, against ``schema`` or the request's
  ``response_format`` JSON schema (with neither, it need only be JSON);
* ``auto`` (default) — ``tool_calls`` when the draft calls tools or the request offers
  tools, else ``content``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policyd.api import Message, StrategyContext, ToolCall, ValidatorRef, Verdict, VerdictKind


class JsonSchemaParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    target: Literal["auto", "content", "tool_calls"] = "auto"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    """The JSON Schema to check against (written ``schema:``); checked at load time."""
    require_tool_call: bool = False
    """With tools offered, a text answer instead of a tool call is a reject."""

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            import jsonschema  # on first use: ~25 ms the daemon need not pay at start-up
            from jsonschema.exceptions import SchemaError

            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value


def schema_problem(instance: Any, schema: Mapping[str, Any]) -> str | None:
    """The most relevant violation of ``schema`` by ``instance`` as one line, or None when it conforms."""
    import jsonschema  # on first use: ~25 ms the daemon need not pay at start-up
    from jsonschema.exceptions import SchemaError, best_match

    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except SchemaError as exc:
        return f"the schema itself is invalid: {exc.message}"
    error = best_match(cls(schema).iter_errors(instance))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message}" + (f" at /{where}" if where else "")


class JsonSchemaValidator:
    def __init__(self, params: JsonSchemaParams) -> None:
        self.params = params

    async def __call__(self, ctx: StrategyContext, draft: Message) -> Verdict:
        target = self.params.target
        if target == "auto":
            target = "tool_calls" if draft.tool_calls or ctx.request.tools else "content"
        if target == "tool_calls":
            return self._tool_calls(ctx, draft)
        return self._content(ctx, draft)

    def _tool_calls(self, ctx: StrategyContext, draft: Message) -> Verdict:
        if not draft.tool_calls:
            if self.params.require_tool_call:
                return Verdict(VerdictKind.REJECT, reason="expected a tool call, got a text answer")
            return Verdict(VerdictKind.ACCEPT, reason="no tool calls to check")
        tools = {t.name: t for t in ctx.request.tools}
        for call in draft.tool_calls:
            problem = self._tool_call_problem(call, tools)
            if problem:
                return Verdict(VerdictKind.REJECT, reason=f"tool call {call.name}: {problem}")
        return Verdict(VerdictKind.ACCEPT)

    def _tool_call_problem(self, call: ToolCall, tools: Mapping[str, Any]) -> str | None:
        schema = self.params.schema_
        if schema is None:
            tool = tools.get(call.name)
            if tool is None:
                return f"unknown tool (offered: {', '.join(sorted(tools)) or 'none'})"
            schema = dict(tool.parameters)
        try:
            args = json.loads(call.arguments_json or "{}")
        except json.JSONDecodeError as exc:
            return f"arguments are not JSON ({exc.msg})"
        return schema_problem(args, schema)

    def _content(self, ctx: StrategyContext, draft: Message) -> Verdict:
        try:
            value = json.loads(draft.content)
        except json.JSONDecodeError as exc:
            return Verdict(VerdictKind.REJECT, reason=f"answer is not JSON ({exc.msg})")
        fmt = ctx.request.params.response_format
        schema = self.params.schema_ or (dict(fmt.json_schema) if fmt.json_schema else None)
        problem = schema_problem(value, schema) if schema is not None else None
        if problem:
            return Verdict(VerdictKind.REJECT, reason=f"answer does not match the schema: {problem}")
        return Verdict(VerdictKind.ACCEPT)


def build(ref: ValidatorRef, params: JsonSchemaParams) -> JsonSchemaValidator:
    return JsonSchemaValidator(params)
