"""A test-only plugin: the testing kit's scripted provider, and a custom validator.

It is registered through the real hooks (``PluginHost.add``), so routing cases run
the engine, the strategies and the validators exactly as the daemon does; only the
upstream is scripted (see :mod:`policyd.testing.scripted`).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from policyd.api import Message, StrategyContext, ValidatorRef, ValidatorSpec, Verdict, VerdictKind, hookimpl
from policyd.testing.scripted import ScriptedProvider, ScriptedProviderPlugin

__all__ = ["ContainsValidator", "ScriptedPlugin", "ScriptedProvider"]


class ContainsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    word: str


class ContainsValidator:
    """A custom validator as a third party would write one: accepts answers containing a word."""

    def __init__(self, ref: ValidatorRef, params: ContainsParams) -> None:
        self.word = params.word

    async def __call__(self, ctx: StrategyContext, draft: Message) -> Verdict:
        if self.word in draft.content:
            return Verdict(VerdictKind.ACCEPT)
        return Verdict(VerdictKind.REJECT, reason=f"the answer does not mention {self.word!r}")


class ScriptedPlugin(ScriptedProviderPlugin):
    @hookimpl
    def policyd_register_validators(self, register: Callable[[ValidatorSpec], None]) -> None:
        register(ValidatorSpec(name="test-contains", factory=ContainsValidator, params=ContainsParams))
