"""``self-consistency``: sample the question again and accept when enough answers agree.

The draft counts as the first of ``k`` answers; up to ``k - 1`` more are sampled
(role VALIDATE, distinct sample indexes so the cache does not repeat one) from the
reference's model, or else the model and effort that wrote the draft. Sampling stops
as soon as the result is decided. When an answer's share reaches ``threshold`` the
verdict is accept (the draft's answer) or repair (another answer won); otherwise reject.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policyd.api import (
    AttemptRole,
    Effort,
    EffortParam,
    ExplainContext,
    Message,
    StrategyContext,
    ValidatorRef,
    Verdict,
    VerdictKind,
)


class SelfConsistencyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(default=3, ge=2, le=16)
    """Answers compared, the draft included."""
    threshold: float = Field(default=0.6, gt=0, le=1)
    """Share of the k answers that must agree."""
    extract: str | None = None
    """A regex picking the part to compare (its first group, else the match); default: the whole answer."""
    effort: EffortParam | None = None
    """Effort of the extra samples; default: the draft's."""

    @field_validator("extract")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


def _canonical(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:
        return " ".join(text.split()).casefold()


class SelfConsistency:
    def __init__(self, ref: ValidatorRef, params: SelfConsistencyParams) -> None:
        self.model = ref.model
        self.params = params
        self.extract = re.compile(params.extract) if params.extract else None

    def key(self, message: Message) -> str | None:
        """What two answers must share to agree; None when the answer has nothing to compare."""
        if message.tool_calls:
            return json.dumps([(c.name, _canonical(c.arguments_json)) for c in message.tool_calls])
        text = message.content
        if self.extract is not None:
            found = self.extract.search(text)
            if found is None:
                return None
            text = found.group(1) if found.groups() else found.group(0)
        return _canonical(text)

    def _sampler(self, ctx: StrategyContext) -> tuple[str | None, Effort]:
        if self.model is not None:
            return self.model, self.params.effort or Effort.OFF
        for attempt in reversed(ctx.attempts):
            if attempt.role is not AttemptRole.VALIDATE and attempt.model and not attempt.error:
                return attempt.model, self.params.effort or attempt.effort
        return None, Effort.OFF

    async def __call__(self, ctx: StrategyContext, draft: Message) -> Verdict:
        model, effort = self._sampler(ctx)
        if model is None:
            return Verdict(VerdictKind.REJECT, reason="no model to sample from")
        k, needed = self.params.k, math.ceil(self.params.threshold * self.params.k - 1e-9)
        draft_key = self.key(draft)
        counts: Counter[str] = Counter()
        answers: dict[str, Message] = {}
        if draft_key is not None:
            counts[draft_key] = 1
            answers[draft_key] = draft
        seen = 1
        for index in range(1, k):
            result = await ctx.call(model, role=AttemptRole.VALIDATE, effort=effort, sample_index=index)
            seen += 1
            if result.response is not None:
                key = self.key(result.response.message)
                if key is not None:
                    counts[key] += 1
                    answers.setdefault(key, result.response.message)
            top = counts.most_common(1)[0] if counts else ("", 0)
            if top[1] >= needed or top[1] + (k - seen) < needed:
                break
        share = f"{max(counts.values(), default=0)}/{k}"
        if draft_key is not None and counts[draft_key] >= needed:
            return Verdict(VerdictKind.ACCEPT, reason=f"{counts[draft_key]}/{k} answers agree with the draft")
        winner = counts.most_common(1)[0] if counts else None
        if winner is not None and winner[1] >= needed:
            return Verdict(
                VerdictKind.REPAIR,
                reason=f"{winner[1]}/{k} answers agree on another answer than the draft",
                repaired=answers[winner[0]],
            )
        return Verdict(VerdictKind.REJECT, reason=f"no answer reaches {needed}/{k} agreement (best {share})")

    def estimate_usd(self, ectx: ExplainContext) -> tuple[float, float]:
        """Best: just enough agreeing samples. Worst: all k - 1 samples."""
        model = self.model or (ectx.plan.models[0] if ectx.plan.models else None)
        if model is None:
            return 0.0, 0.0
        one = ectx.estimate_usd(model, effort=self.params.effort or Effort.OFF)
        needed = math.ceil(self.params.threshold * self.params.k - 1e-9)
        return one * max(0, needed - 1), one * (self.params.k - 1)


def build(ref: ValidatorRef, params: SelfConsistencyParams) -> SelfConsistency:
    return SelfConsistency(ref, params)
