"""Deterministic behaviour of simulated models: answers, judgements, tokens and latency.

Everything is a pure function of the call (model, effort, messages, parameters,
sample index) and a seed, so tests and demos are repeatable. Answers say that they
are simulated and carry a ``quality=good|flawed`` marker that the simulated judge
reads, which lets the offline default show accepts, repairs and rejections.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policyd.api import AttemptRole, Effort, Message, ModelCall, Role, ToolCall, tokens
from policyd_plugins.simulated.catalog import PROFILES, Profile

DEFAULT_PROFILE = Profile(ttft_ms=300, tokens_per_s=80, quality={"*": 0.7})
EFFORT_QUALITY_BONUS = {Effort.OFF: 0.0, Effort.LOW: 0.05, Effort.MEDIUM: 0.10, Effort.HIGH: 0.15}
EFFORT_REASONING_TOKENS = {Effort.OFF: 0, Effort.LOW: 256, Effort.MEDIUM: 1024, Effort.HIGH: 4096}
GOOD, FLAWED = "quality=good", "quality=flawed"


@dataclass(frozen=True)
class Behaviour:
    text: str
    tool_calls: tuple[ToolCall, ...]
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    finish_reason: str
    latency_s: float
    ttft_s: float
    good: bool
    logprobs: tuple[float, ...] | None
    error: str = ""


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _fingerprint(call: ModelCall) -> str:
    body = [(m.role.value, m.content, [(c.name, c.arguments_json) for c in m.tool_calls]) for m in call.messages]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def profile_for(call: ModelCall) -> tuple[Profile, Mapping[str, Any]]:
    overrides: Mapping[str, Any] = call.model.options.get("simulated", {}) or {}
    base = PROFILES.get(call.model.id, DEFAULT_PROFILE)
    if "quality" in overrides:
        base = Profile(base.ttft_ms, base.tokens_per_s, {"*": float(overrides["quality"])})
    return base, overrides


def behave(call: ModelCall, *, seed: str, latency_scale: float) -> Behaviour:
    profile, overrides = profile_for(call)
    key = (seed, call.model.id, call.effort.value, call.role.value, call.sample_index, _fingerprint(call))
    if _unit("error", *key) < float(overrides.get("error_rate", 0.0)):
        return Behaviour("", (), 0, 0, 0, "error", 0.0, 0.0, False, None, error="simulated upstream error")
    reasoning = EFFORT_REASONING_TOKENS[call.effort] if call.model.thinking else 0
    if _asks_for_verdict(call):
        good, text = _judge(call, profile, key)
        tool_calls: tuple[ToolCall, ...] = ()
    else:
        quality = min(0.99, profile.quality_for(call.task or "*") + EFFORT_QUALITY_BONUS[call.effort])
        good = _unit("quality", *key) < quality
        text, tool_calls = _answer(call, good)
    input_tokens = tokens.input_tokens(call.messages, call.tools)
    output_tokens = tokens.text_tokens(text) + sum(tokens.text_tokens(c.arguments_json) for c in tool_calls)
    finish = "tool_calls" if tool_calls else "stop"
    limit = call.params.max_output_tokens
    if limit is not None and output_tokens > limit:
        text = text[: limit * tokens.CHARS_PER_TOKEN]
        output_tokens, finish = limit, "length"
    ttft = float(overrides.get("ttft_ms", profile.ttft_ms)) / 1000
    tps = float(overrides.get("tokens_per_s", profile.tokens_per_s))
    latency = (ttft + (output_tokens + reasoning) / tps) * latency_scale
    logprobs = None
    if call.logprobs:
        centre = -0.05 if good else -0.9
        logprobs = tuple(centre * (0.5 + _unit("lp", i, *key)) for i in range(max(1, min(output_tokens, 64))))
    return Behaviour(
        text=text,
        tool_calls=tool_calls,
        input_tokens=input_tokens,
        output_tokens=output_tokens + reasoning,
        reasoning_tokens=reasoning,
        finish_reason=finish,
        latency_s=latency,
        ttft_s=ttft * latency_scale,
        good=good,
        logprobs=logprobs,
    )


def _last_user_text(messages: tuple[Message, ...]) -> str:
    for msg in reversed(messages):
        if msg.role is Role.USER:
            return msg.content
    return ""


def _answer(call: ModelCall, good: bool) -> tuple[str, tuple[ToolCall, ...]]:
    marker = GOOD if good else FLAWED
    prompt = " ".join(_last_user_text(call.messages).split())
    gist = prompt[:80] + ("..." if len(prompt) > 80 else "")
    fmt = call.params.response_format
    choice = call.params.tool_choice
    if call.tools and (choice is None or choice.mode != "none"):
        named = [t for t in call.tools if choice is not None and t.name == choice.function]
        tool = named[0] if named else call.tools[0]
        args = _instance(tool.parameters, good)
        cid = "call_" + hashlib.sha256(f"{call.model.id}{gist}".encode()).hexdigest()[:12]
        text = f"[simulated by {call.model.id}, effort {call.effort.value}, {marker}] calling {tool.name}"
        return text, (ToolCall(id=cid, name=tool.name, arguments_json=json.dumps(args, sort_keys=True)),)
    if fmt.kind in ("json_object", "json_schema"):
        obj = _instance(fmt.json_schema or {}, good) if fmt.json_schema else {}
        if isinstance(obj, dict):
            obj.setdefault("simulated", f"{call.model.id} {marker}")
        return json.dumps(obj, sort_keys=True), ()
    length = 3 + int(_unit("len", call.model.id, gist) * 12)
    body = " ".join(["lorem"] * length)
    return (f"[simulated answer by {call.model.id}, effort {call.effort.value}, {marker}] Re: {gist!r}. {body}."), ()


def _instance(schema: Mapping[str, Any], good: bool) -> Any:
    """A value of the schema's shape; a flawed one misses its first required property."""
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props: Mapping[str, Any] = schema.get("properties", {}) or {}
        required = list(schema.get("required", []) or [])
        out = {name: _instance(sub, True) for name, sub in props.items()}
        if not good and required:
            out.pop(required[0], None)
        return out
    if schema.get("enum"):
        return schema["enum"][0]
    return {"string": "simulated", "integer": 1, "number": 1.0, "boolean": True, "array": []}.get(
        str(kind), "simulated"
    )


def _asks_for_verdict(call: ModelCall) -> bool:
    """A validation call whose instructions ask for a ``"verdict"`` (an LLM judge), not a re-sample."""
    return call.role is AttemptRole.VALIDATE and any(
        m.role is Role.SYSTEM and '"verdict"' in m.content for m in call.messages
    )


def _judge(call: ModelCall, profile: Profile, key: tuple[object, ...]) -> tuple[bool, str]:
    """A simulated judge: reads the draft's quality marker and answers a verdict as JSON.

    The verdict format is the one ``llm-judge`` asks for; the last marker in the
    transcript is the draft's. A sharp judge (its profile's quality) sees the truth.
    """
    transcript = "\n".join(m.content for m in call.messages)
    good_at, flawed_at = transcript.rfind(GOOD), transcript.rfind(FLAWED)
    draft_good = None if good_at == flawed_at == -1 else good_at > flawed_at
    sharp = _unit("judge", *key) < profile.quality_for("*")
    if draft_good is None:
        draft_good = sharp
    seen_good = draft_good if sharp else not draft_good
    if seen_good:
        return True, json.dumps({"verdict": "accept"})
    if _unit("repair", *key) < 0.35:
        repaired = f"[simulated repair by {call.model.id}, {GOOD}] corrected answer."
        return True, json.dumps({"verdict": "repair", "reason": "fixed a flaw in the draft", "output": repaired})
    return False, json.dumps({"verdict": "reject", "reason": "the draft is flawed (simulated judgement)"})


def chunks(text: str, size: int = 16) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def per_chunk_delay(b: Behaviour, n_chunks: int) -> float:
    return max(0.0, b.latency_s - b.ttft_s) / max(1, n_chunks)


__all__ = ["FLAWED", "GOOD", "Behaviour", "behave", "chunks", "per_chunk_delay"]
