"""A third-party-style provider plugin for the telemetry tests: ``fixture-http``.

It speaks a small JSON wire format to a fake upstream the test runs, sends its API key
(read from the variable ``api_key_env`` names) as a bearer token and calls
``inject_headers``. It is deliberately careless with the key: on an error it logs the
headers and raises an error quoting a ``?key=`` URL and the upstream's body, which is
what the scrubber must catch.

The tests load it directly (in-process) and through the ``policyd`` entry-point group
(daemon subprocess), exactly as a third-party plugin is loaded.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable

import aiohttp
from pydantic import BaseModel, ConfigDict

from policyd.errors import UpstreamError
from policyd.plugin import hookimpl
from policyd.plugin.specs import DeltaSink, ProviderSpec
from policyd.telemetry.propagation import inject_headers
from policyd.types import Message, ModelCall, ModelResponse, Role, Usage

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


@hookimpl
def policyd_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(ProviderSpec(kind="fixture-http", factory=FixtureHttpProvider, settings=HttpSettings))
