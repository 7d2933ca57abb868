"""``logprob-confidence``: a free gate on how sure the drafter was of its answer.

The strategy asks the drafter for token log-probabilities (this validator sets
``needs_logprobs``); the gate accepts when their mean reaches ``min_mean_logprob``
and, if set, no token falls below ``min_token_logprob``. Upstreams that return no
log-probabilities get ``when_missing``.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from policyd.api import Message, StrategyContext, ValidatorRef, Verdict, VerdictKind


class LogprobParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_mean_logprob: float = Field(default=-0.3, le=0)
    """Mean token log-probability the answer must reach (-0.3 ≈ 74% average token probability)."""
    min_token_logprob: float | None = Field(default=None, le=0)
    """If set, any single token below this rejects the answer."""
    when_missing: Literal["reject", "accept"] = "reject"


class LogprobValidator:
    needs_logprobs = True

    def __init__(self, params: LogprobParams) -> None:
        self.params = params

    async def __call__(self, ctx: StrategyContext, draft: Message) -> Verdict:
        logprobs = ctx.logprobs_of(draft)
        if not logprobs:
            kind = VerdictKind.ACCEPT if self.params.when_missing == "accept" else VerdictKind.REJECT
            return Verdict(kind, reason="the upstream returned no log-probabilities")
        mean = sum(logprobs) / len(logprobs)
        if mean < self.params.min_mean_logprob:
            return Verdict(
                VerdictKind.REJECT,
                reason=f"low confidence: mean logprob {mean:.3f} < {self.params.min_mean_logprob} "
                f"(mean token probability {math.exp(mean):.0%})",
            )
        floor = self.params.min_token_logprob
        if floor is not None and min(logprobs) < floor:
            return Verdict(VerdictKind.REJECT, reason=f"a token has logprob {min(logprobs):.3f} < {floor}")
        return Verdict(VerdictKind.ACCEPT, reason=f"mean logprob {mean:.3f}")


def build(ref: ValidatorRef, params: LogprobParams) -> LogprobValidator:
    return LogprobValidator(params)
