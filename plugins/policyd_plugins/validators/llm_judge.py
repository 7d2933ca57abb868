"""``llm-judge``: a strong model reads the request and the draft and answers a strict verdict.

The verdict format is one JSON object and nothing else::

    {"verdict": "accept"}
    {"verdict": "reject", "reason": "<what is wrong>"}
    {"verdict": "repair", "reason": "<what was fixed>", "output": "<the corrected answer in full>"}

Anything else (prose, unknown keys, a reject without a reason, a repair without an
output) is MALFORMED. The judge is then asked once more, at once and on the same draft,
with its unreadable answer and the format quoted back (a new call, so neither a cached
copy of the garbage nor a new draft round); if that answer is unreadable too, the
verdict is MALFORMED, which strategies count as a reject. A judge call that fails or
times out is a reject whose reason says so.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from policyd.api import (
    AttemptRole,
    Effort,
    EffortParam,
    ExplainContext,
    GenerationParams,
    Message,
    ResponseFormat,
    Role,
    StrategyContext,
    ValidatorRef,
    Verdict,
    VerdictKind,
    tokens,
)
from policyd_plugins.validators.render import message_text, transcript

VERDICT_FORMAT = """Answer with exactly one JSON object and nothing else, in one of these forms:
{"verdict": "accept"}
{"verdict": "reject", "reason": "<what is wrong, in one sentence>"}
{"verdict": "repair", "reason": "<what you fixed>", "output": "<the corrected answer in full>"}
Use "repair" only when you can give the complete corrected answer."""

SYSTEM_PROMPT = (
    "You are a strict reviewer. Decide whether the draft answer correctly and completely "
    "answers the request.\n" + VERDICT_FORMAT
)
VERDICT_TOKENS = 24
"""Output tokens of a bare accept, for best-case estimates."""
REPAIR_OVERHEAD_TOKENS = 64
"""Tokens of a repair verdict beyond the corrected answer itself."""

REASK = "That answer could not be read as a verdict.\n" + VERDICT_FORMAT
"""Sent back, after the judge's unreadable answer, to ask for the verdict again."""

_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)
_KEYS = {"verdict", "reason", "output"}


class LlmJudgeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instructions: str = ""
    """Extra review criteria appended to the judge's instructions."""
    effort: EffortParam = Effort.OFF
    max_output_tokens: int | None = Field(default=None, gt=0)
    """Verdict allowance; by default the answer's allowance plus room for the verdict (a repair)."""
    timeout_ms: int | None = Field(default=None, gt=0)
    """Give up on the judge after this long (the verdict is then a reject)."""
    reask: bool = True
    """Ask once more when the verdict is unreadable (MALFORMED)."""


def parse_verdict(text: str) -> Verdict:
    """Read a judge's answer in the strict format; anything else is MALFORMED."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        data: Any = json.loads(body)
    except ValueError:
        return _malformed(text, "not a JSON object")
    if not isinstance(data, dict):
        return _malformed(text, "not a JSON object")
    extra = set(data) - _KEYS
    if extra:
        return _malformed(text, f"unknown keys {sorted(extra)}")
    verdict, reason, output = data.get("verdict"), data.get("reason", ""), data.get("output")
    if not isinstance(reason, str):
        return _malformed(text, "reason is not a string")
    if verdict == "accept":
        return Verdict(VerdictKind.ACCEPT, reason=reason)
    if verdict == "reject":
        if not reason.strip():
            return _malformed(text, "a reject needs a reason")
        return Verdict(VerdictKind.REJECT, reason=reason)
    if verdict == "repair":
        if not isinstance(output, str) or not output.strip():
            return _malformed(text, "a repair needs the corrected output")
        return Verdict(VerdictKind.REPAIR, reason=reason, repaired=Message(role=Role.ASSISTANT, content=output))
    return _malformed(text, f"verdict must be accept, reject or repair (got {verdict!r})")


def _malformed(text: str, problem: str) -> Verdict:
    snippet = " ".join(text.split())[:80]
    return Verdict(VerdictKind.MALFORMED, reason=f"unreadable verdict ({problem}): {snippet!r}")


class LlmJudge:
    def __init__(self, ref: ValidatorRef, params: LlmJudgeParams) -> None:
        assert ref.model is not None  # the loader checks needs_model
        self.model = ref.model
        self.params = params
        system = SYSTEM_PROMPT + (f"\nAlso check: {params.instructions}" if params.instructions else "")
        self.system = Message(role=Role.SYSTEM, content=system)

    def messages(self, request_messages: tuple[Message, ...], draft: Message) -> tuple[Message, ...]:
        user = f"## Request\n{transcript(request_messages)}\n\n## Draft answer\n{message_text(draft)}"
        return (self.system, Message(role=Role.USER, content=user))

    def output_allowance(self, answer_tokens: int) -> int:
        return self.params.max_output_tokens or answer_tokens + REPAIR_OVERHEAD_TOKENS

    async def __call__(self, ctx: StrategyContext, draft: Message) -> Verdict:
        answer = ctx.request.params.max_output_tokens or tokens.DEFAULT_MAX_OUTPUT_TOKENS
        gen = GenerationParams(
            max_output_tokens=self.output_allowance(answer),
            temperature=0.0,
            response_format=ResponseFormat(kind="json_object"),
        )
        messages = self.messages(ctx.request.messages, draft)
        verdict, said = await self._judge(ctx, messages, gen)
        if verdict.kind is not VerdictKind.MALFORMED or not self.params.reask or said is None:
            return verdict
        again: tuple[Message, ...] = (*messages, said, Message(role=Role.USER, content=REASK))
        return (await self._judge(ctx, again, gen))[0]

    async def _judge(
        self, ctx: StrategyContext, messages: tuple[Message, ...], gen: GenerationParams
    ) -> tuple[Verdict, Message | None]:
        """The verdict of one judge call, and the judge's answer it was read from."""
        timeout = self.params.timeout_ms / 1000 if self.params.timeout_ms else None
        result = await ctx.call(
            self.model,
            role=AttemptRole.VALIDATE,
            messages=messages,
            effort=self.params.effort,
            params=gen,
            timeout_s=timeout,
            tools=(),
        )
        if result.response is None:
            return Verdict(VerdictKind.REJECT, reason=f"no verdict: {result.attempt.error}"), None
        return parse_verdict(result.response.message.content), result.response.message

    def estimate_usd(self, ectx: ExplainContext) -> tuple[float, float]:
        """Best: a bare accept after reading the request and a full answer. Worst: a full repair."""
        draft = Message(role=Role.ASSISTANT, content="")
        prompt = tokens.message_tokens(self.messages((), draft))
        read = prompt + ectx.answer_tokens
        effort = self.params.effort
        best = ectx.estimate_usd(
            self.model, output_tokens=VERDICT_TOKENS, extra_input_tokens=read, effort=effort, reasoning=False
        )
        worst = ectx.estimate_usd(
            self.model,
            output_tokens=self.output_allowance(ectx.answer_tokens),
            extra_input_tokens=read,
            effort=effort,
        )
        return best, worst


def build(ref: ValidatorRef, params: LlmJudgeParams) -> LlmJudge:
    return LlmJudge(ref, params)
