"""``word-limit``: a free validator on the answer's length in words.

Too short is rejected. Too long is rejected, or with ``truncate: true`` repaired
to its first ``max_words`` words (a REPAIR verdict: the shortened text is the
answer). No model is called, so it costs nothing and needs no ``model``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policyd.api import Message, StrategyContext, ValidatorRef, ValidatorSpec, Verdict, VerdictKind


class WordLimitParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_words: int = Field(gt=0)
    min_words: int = Field(default=0, ge=0)
    truncate: bool = False
    """Repair an answer that is too long by cutting it, instead of rejecting it."""

    @model_validator(mode="after")
    def _ordered(self) -> WordLimitParams:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words: {self.min_words} is more than max_words ({self.max_words})")
        return self


class WordLimit:
    def __init__(self, params: WordLimitParams) -> None:
        self.params = params

    async def __call__(self, ctx: StrategyContext, draft: Message) -> Verdict:
        words = draft.content.split()
        p = self.params
        if len(words) < p.min_words:
            return Verdict(VerdictKind.REJECT, reason=f"{len(words)} words, fewer than {p.min_words}")
        if len(words) <= p.max_words:
            return Verdict(VerdictKind.ACCEPT)
        if not p.truncate:
            return Verdict(VerdictKind.REJECT, reason=f"{len(words)} words, more than {p.max_words}")
        short = Message(role=draft.role, content=" ".join(words[: p.max_words]))
        return Verdict(VerdictKind.REPAIR, reason=f"cut from {len(words)} to {p.max_words} words", repaired=short)


def build(ref: ValidatorRef, params: WordLimitParams) -> WordLimit:
    return WordLimit(params)


SPEC = ValidatorSpec(name="word-limit", factory=build, params=WordLimitParams)
