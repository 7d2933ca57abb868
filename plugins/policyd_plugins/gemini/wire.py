"""The Gemini API wire format (generateContent / streamGenerateContent), as pure functions.

``contents`` alternate ``user`` and ``model`` turns of ``parts``; system messages go
to ``systemInstruction``; tools are ``functionDeclarations``; a tool's answer is a
``functionResponse`` part named after the function it answers. Effort maps to
``generationConfig.thinkingConfig.thinkingBudget``; thought tokens are billed as output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from policyd.api import Message, ModelCall, ModelResponse, Role, ToolCall, ToolChoice, UpstreamError, Usage
from policyd_plugins.gemini.schema import to_gemini_schema
from policyd_plugins.http.classify import classify_status, malformed, refused
from policyd_plugins.http.provider import estimated_usage, json_object

BLOCKED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"})


def _function_response(m: Message, names: Mapping[str, str]) -> dict[str, Any]:
    name = m.name or names.get(m.tool_call_id, "")
    try:
        parsed: Any = json.loads(m.content)
    except ValueError:
        parsed = m.content
    response = parsed if isinstance(parsed, dict) else {"result": parsed}
    part: dict[str, Any] = {"functionResponse": {"name": name, "response": response}}
    if m.tool_call_id:
        part["functionResponse"]["id"] = m.tool_call_id
    return part


def contents(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """``(system text, turns)`` with consecutive turns of one role merged."""
    names = {c.id: c.name for m in messages for c in m.tool_calls}
    system = [m.content for m in messages if m.role is Role.SYSTEM and m.content]
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role is Role.SYSTEM:
            continue
        if m.role is Role.TOOL:
            parts = [_function_response(m, names)]
        else:
            parts = [{"text": m.content}] if m.content else []
            for c in m.tool_calls:
                call_part: dict[str, Any] = {"name": c.name, "args": dict(json_object(c.arguments_json))}
                if c.id:
                    call_part["id"] = c.id
                parts.append({"functionCall": call_part})
        if not parts:
            continue
        role = "model" if m.role is Role.ASSISTANT else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})
    return "\n\n".join(system), turns


_GEMINI_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "function": "ANY"}


def tool_config_json(choice: ToolChoice | None) -> dict[str, Any] | None:
    """Gemini's ``toolConfig.functionCallingConfig``: AUTO, NONE, ANY, or ANY limited to one function."""
    if choice is None:
        return None
    config: dict[str, Any] = {"mode": _GEMINI_MODES[choice.mode]}
    if choice.mode == "function":
        config["allowedFunctionNames"] = [choice.function]
    return {"functionCallingConfig": config}


def request_body(
    call: ModelCall, *, budgets: Mapping[str, int], json_schema_field: str, top_logprobs: int
) -> dict[str, Any]:
    p = call.params
    system, turns = contents(call.messages)
    body: dict[str, Any] = {"contents": turns}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if call.tools:
        body["tools"] = [
            {
                "functionDeclarations": [
                    {"name": t.name, "description": t.description, "parameters": to_gemini_schema(t.parameters)}
                    if t.parameters
                    else {"name": t.name, "description": t.description}
                    for t in call.tools
                ]
            }
        ]
        config = tool_config_json(p.tool_choice)
        if config is not None:
            body["toolConfig"] = config
    gen: dict[str, Any] = {}
    if p.max_output_tokens is not None:
        gen["maxOutputTokens"] = p.max_output_tokens
    if p.temperature is not None:
        gen["temperature"] = p.temperature
    if p.top_p is not None:
        gen["topP"] = p.top_p
    if p.stop:
        gen["stopSequences"] = list(p.stop)
    if p.seed is not None:
        gen["seed"] = p.seed
    fmt = p.response_format
    if fmt.kind in ("json_object", "json_schema"):
        gen["responseMimeType"] = "application/json"
        if fmt.kind == "json_schema" and fmt.json_schema is not None:
            schema = dict(fmt.json_schema)
            gen[json_schema_field] = to_gemini_schema(schema) if json_schema_field == "responseSchema" else schema
    if call.model.thinking:
        gen["thinkingConfig"] = {"thinkingBudget": int(budgets[call.effort.value])}
    if call.logprobs:
        gen["responseLogprobs"] = True
        if top_logprobs:
            gen["logprobs"] = top_logprobs
    if gen:
        body["generationConfig"] = gen
    return body


def raise_for_error(provider: str, data: Mapping[str, Any]) -> None:
    err = data.get("error")
    if isinstance(err, dict):
        code = err.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else 502
        raise classify_status(provider, status, json.dumps({"error": err}), {})


def usage_from(call: ModelCall, meta: Mapping[str, Any] | None, text: str) -> Usage:
    """Output is candidates plus thoughts: thinking is billed as output."""
    meta = meta or {}
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    inp = int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0)
    out = int(meta.get("candidatesTokenCount") or 0) + thoughts
    usage = estimated_usage(call, text, inp, out)
    return Usage(usage.input_tokens, usage.output_tokens, thoughts, usage.estimated)


class ResponseAccumulator:
    """Takes whole responses or streamed chunks (each a partial GenerateContentResponse)."""

    def __init__(self, provider: str, call: ModelCall) -> None:
        self.provider = provider
        self.call = call
        self.text: list[str] = []
        self.calls: list[ToolCall] = []
        self.finish: str | None = None
        self.usage: Mapping[str, Any] | None = None
        self.model = ""
        self.logprobs: list[float] = []

    def chunk(self, data: Mapping[str, Any]) -> str:
        """Takes one (partial) response; returns the answer text it adds."""
        raise_for_error(self.provider, data)
        self.usage = data.get("usageMetadata") or self.usage
        self.model = data.get("modelVersion") or self.model
        candidates = data.get("candidates") or []
        if not candidates:
            block = (data.get("promptFeedback") or {}).get("blockReason")
            if block:
                raise refused(self.provider, f"prompt blocked ({block})")
            return ""
        cand = candidates[0]
        added = ""
        for part in (cand.get("content") or {}).get("parts") or []:
            if part.get("thought"):
                continue  # thought summaries are not the answer
            if "text" in part:
                added += part["text"]
            if "functionCall" in part:
                fc = part["functionCall"]
                call_id = fc.get("id") or f"call_{len(self.calls)}"
                args = json.dumps(fc.get("args") or {})
                self.calls.append(ToolCall(id=call_id, name=fc["name"], arguments_json=args))
        for chosen in (cand.get("logprobsResult") or {}).get("chosenCandidates") or []:
            self.logprobs.append(float(chosen["logProbability"]))
        self.finish = cand.get("finishReason") or self.finish
        if added:
            self.text.append(added)
        return added

    def result(self, *, streamed: bool) -> ModelResponse:
        content = "".join(self.text)
        if self.finish is None:
            if streamed:
                raise UpstreamError(
                    self.provider, "malformed response: stream ended before a finishReason", retryable=True
                )
            raise malformed(self.provider, "no candidates and no finishReason")
        if self.finish in BLOCKED and not content:
            raise refused(self.provider, f"finishReason {self.finish}")
        if self.finish == "MALFORMED_FUNCTION_CALL":
            raise malformed(self.provider, "the model produced a malformed function call")
        finish = {"STOP": "stop", "MAX_TOKENS": "length"}.get(self.finish, self.finish.lower())
        if self.calls and finish == "stop":
            finish = "tool_calls"
        return ModelResponse(
            message=Message(role=Role.ASSISTANT, content=content, tool_calls=tuple(self.calls)),
            usage=usage_from(self.call, self.usage, content),
            finish_reason=finish,
            response_model=self.model or self.call.model.upstream,
            logprobs=tuple(self.logprobs) if self.call.logprobs and self.logprobs else None,
        )
