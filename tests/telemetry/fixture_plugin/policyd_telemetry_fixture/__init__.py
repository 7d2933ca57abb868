"""A third-party-style plugin for the telemetry tests: an HTTP provider, a judge and draft-validate.

* ``fixture-http`` speaks a small JSON wire format to a fake upstream the test runs,
  sends its API key (read from the variable ``api_key_env`` names) as a bearer token
  and calls ``inject_headers``. It is deliberately careless with the key: on an error
  it logs the headers and raises an error quoting a ``?key=`` URL and the upstream's
  body, which is what the scrubber must catch.
* ``fixture-judge`` asks a model (role VALIDATE) for a JSON verdict; the simulated
  provider answers one.
* ``fixture-draft-validate``: draft, validate, and on a rejection escalate to the
  strong model.

The tests load it directly (in-process) and through the ``policyd`` entry-point group
(daemon subprocess), exactly as a third-party plugin is loaded.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict

from policyd.engine.context import StrategyContext
from policyd.errors import UpstreamError
from policyd.plugin import hookimpl
from policyd.plugin.specs import DeltaSink, ProviderSpec, StrategySpec, ValidatorRef, ValidatorSpec
from policyd.telemetry.propagation import inject_headers
from policyd.types import (
    AttemptRole,
    Message,
    ModelCall,
    ModelResponse,
    Outcome,
    OutcomeStatus,
    Role,
    Usage,
    Verdict,
    VerdictKind,
)

log = logging.getLogger(__name__)


class HttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    api_key_env: str


class FixtureHttpProvider:
    def __init__(self, name: str, settings: HttpSettings) -> None:
        self.name = name
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None

    async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
        key = os.environ.get(self.settings.api_key_env, "")
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        inject_headers(headers)
        if self.session is None:
            self.session = aiohttp.ClientSession()
        url = f"{self.settings.base_url}/v1/complete"
        body = {
            "model": call.model.upstream,
            "messages": [{"role": m.role.value, "content": m.content} for m in call.messages],
        }
        async with self.session.post(url, json=body, headers=headers) as resp:
            text = await resp.text()
            if resp.status >= 400:
                log.warning("upstream %s?key=%s refused us; sent headers %s", url, key, headers)
                raise UpstreamError(self.name, f"HTTP {resp.status} from {url}?key={key}: {text}", retryable=False)
            data = json.loads(text)
        answer = Message(role=Role.ASSISTANT, content=data["text"])
        if on_delta is not None:
            on_delta(answer.content)
        return ModelResponse(
            message=answer,
            usage=Usage(input_tokens=data["input_tokens"], output_tokens=data["output_tokens"]),
            finish_reason=data.get("finish_reason", "stop"),
            response_model=data.get("model", ""),
        )

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()


class JudgeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def build_judge(ref: ValidatorRef, params: JudgeParams) -> Any:
    assert ref.model is not None
    model = ref.model

    async def judge(ctx: StrategyContext, draft: Message) -> Verdict:
        messages = (
            Message(role=Role.SYSTEM, content="Judge the draft. Answer JSON: {verdict, reason, output}."),
            Message(role=Role.USER, content=draft.content),
        )
        result = await ctx.call(model, role=AttemptRole.VALIDATE, messages=messages)
        if result.response is None:
            return Verdict(VerdictKind.MALFORMED, reason=result.attempt.error)
        try:
            data = json.loads(result.text)
            kind = VerdictKind(data["verdict"])
        except (ValueError, KeyError):
            return Verdict(VerdictKind.MALFORMED, reason="not a verdict")
        repaired = Message(role=Role.ASSISTANT, content=data["output"]) if kind is VerdictKind.REPAIR else None
        return Verdict(kind, reason=data.get("reason", ""), repaired=repaired)

    return judge


class DraftValidateParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    drafter: str
    judge: str
    strong: str


async def run_draft_validate(ctx: StrategyContext) -> Outcome:
    p: DraftValidateParams = ctx.params
    draft = await ctx.call(p.drafter, role=AttemptRole.DRAFT)
    if draft.response is not None:
        verdict = await ctx.validate(ValidatorRef(name="fixture-judge", model=p.judge), draft.response.message)
        if verdict.kind is VerdictKind.ACCEPT:
            return ctx.outcome(OutcomeStatus.ACCEPTED, draft.response.message)
        if verdict.kind is VerdictKind.REPAIR and verdict.repaired is not None:
            return ctx.outcome(OutcomeStatus.ACCEPTED, verdict.repaired)
    strong = await ctx.call(p.strong, role=AttemptRole.ESCALATE, final=True)
    if strong.response is None:
        return ctx.outcome(OutcomeStatus.UPSTREAM_FAILED)
    return ctx.outcome(OutcomeStatus.ACCEPTED_UNVALIDATED, strong.response.message)


@hookimpl
def policyd_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(ProviderSpec(kind="fixture-http", factory=FixtureHttpProvider, settings=HttpSettings))


@hookimpl
def policyd_register_validators(register: Callable[[ValidatorSpec], None]) -> None:
    register(ValidatorSpec(name="fixture-judge", factory=build_judge, params=JudgeParams, needs_model=True))


@hookimpl
def policyd_register_strategies(register: Callable[[StrategySpec], None]) -> None:
    register(
        StrategySpec(
            name="fixture-draft-validate",
            run=run_draft_validate,
            params=DraftValidateParams,
            models=lambda p: [p.drafter, p.strong],
            validators=lambda p: [ValidatorRef(name="fixture-judge", model=p.judge)],
        )
    )
