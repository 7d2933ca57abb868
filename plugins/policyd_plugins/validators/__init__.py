"""policyd's built-in validators, registered through the public hook like any plugin.

``llm-judge`` calls a model; ``json-schema``, ``regex`` and ``logprob-confidence`` are
free and deterministic; ``self-consistency`` samples the drafter again. A third party
adds its own the same way: implement ``policyd_register_validators``.
"""

from __future__ import annotations

from collections.abc import Callable

from policyd.api import ValidatorSpec, hookimpl
from policyd_plugins.validators import json_schema, llm_judge, logprob, pattern, self_consistency

POLICYD_API = "1.0"
"""The plugin API this plugin is written for (see docs/plugins.md)."""


@hookimpl
def policyd_register_validators(register: Callable[[ValidatorSpec], None]) -> None:
    register(
        ValidatorSpec(name="llm-judge", factory=llm_judge.build, params=llm_judge.LlmJudgeParams, needs_model=True)
    )
    register(ValidatorSpec(name="json-schema", factory=json_schema.build, params=json_schema.JsonSchemaParams))
    register(ValidatorSpec(name="regex", factory=pattern.build, params=pattern.RegexParams))
    register(ValidatorSpec(name="logprob-confidence", factory=logprob.build, params=logprob.LogprobParams))
    register(
        ValidatorSpec(
            name="self-consistency", factory=self_consistency.build, params=self_consistency.SelfConsistencyParams
        )
    )
