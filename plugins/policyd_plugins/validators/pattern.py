"""``regex``: a free, deterministic gate on the answer text.

``must_match: true`` (default) accepts an answer the pattern matches; ``false``
rejects one it matches (a deny pattern, e.g. leaked placeholders or refusals).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from policyd.api import Message, StrategyContext, ValidatorRef, Verdict, VerdictKind
from policyd_plugins.validators.render import message_text

FLAGS = {"ignorecase": re.IGNORECASE, "multiline": re.MULTILINE, "dotall": re.DOTALL}


class RegexParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str
    """A Python regular expression; compiled at load time."""
    mode: Literal["search", "fullmatch"] = "search"
    must_match: bool = True
    flags: list[Literal["ignorecase", "multiline", "dotall"]] = []

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class RegexValidator:
    def __init__(self, params: RegexParams) -> None:
        flags = 0
        for name in params.flags:
            flags |= FLAGS[name]
        self.regex = re.compile(params.pattern, flags)
        self.params = params

    async def __call__(self, ctx: StrategyContext, draft: Message) -> Verdict:
        text = message_text(draft)
        found = self.regex.fullmatch(text) if self.params.mode == "fullmatch" else self.regex.search(text)
        if self.params.must_match and found is None:
            return Verdict(VerdictKind.REJECT, reason=f"answer does not match /{self.params.pattern}/")
        if not self.params.must_match and found is not None:
            return Verdict(VerdictKind.REJECT, reason=f"answer matches the forbidden /{self.params.pattern}/")
        return Verdict(VerdictKind.ACCEPT)


def build(ref: ValidatorRef, params: RegexParams) -> RegexValidator:
    return RegexValidator(params)
