"""Errors as OpenAI SDKs see them: each class with its HTTP status, and streams that fail visibly."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import openai
import pytest

from policyd.api import DeltaSink, ModelCall, ModelResponse, NoParams, ProviderSpec, UpstreamError, hookimpl
from policyd.server.auth import hash_token
from policyd.testing import make_host
from tests.server.openai.conftest import FAST

SCRIPTED = """
policies:
  default:
    rules:
      - name: rest
        plan: {strategy: single, params: {model: gpt-oss-120b}}
"""


def user(text: str = "hi") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_invalid_field_is_a_400_naming_the_parameter(front):
    f = await front()
    client = f.aclient()
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="default", messages=user(), temperature=3.5)
    assert bad.value.param == "temperature"
    assert bad.value.code == "invalid_argument"
    assert "must be in [0.0, 2.0]" in bad.value.message
    with pytest.raises(openai.BadRequestError) as n:
        await client.chat.completions.create(model="default", messages=user(), n=2)
    assert n.value.param == "n"
    with pytest.raises(openai.BadRequestError) as part:
        image = {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
        await client.chat.completions.create(model="default", messages=[{"role": "user", "content": [image]}])
    assert part.value.param == "messages[0].content[0].type"
    with pytest.raises(openai.BadRequestError) as header:
        await client.chat.completions.create(
            model="default", messages=user(), extra_headers={"x-policyd-stakes": "extreme"}
        )
    assert header.value.param == "x-policyd-stakes"


async def test_request_limits_apply_to_http(front):
    f = await front(FAST + "limits: {max_messages: 2, max_output_tokens: 100}\n")
    client = f.aclient()
    with pytest.raises(openai.BadRequestError) as many:
        await client.chat.completions.create(model="default", messages=user() * 3)
    assert many.value.param == "messages" and "at most 2 messages" in many.value.message
    with pytest.raises(openai.BadRequestError) as tokens:
        await client.chat.completions.create(model="default", messages=user(), max_completion_tokens=101)
    assert tokens.value.param == "max_completion_tokens"


async def test_unknown_model_is_a_404(front):
    f = await front()
    with pytest.raises(openai.NotFoundError) as missing:
        await f.aclient().chat.completions.create(model="gpt-17", messages=user())
    assert "neither a policy" in missing.value.message


async def test_deadline_is_a_408_that_the_sdk_does_not_retry(front):
    f = await front(SCRIPTED, {"gpt-oss-120b": {"text": "late", "delay_ms": 2000}})
    client = f.aclient(max_retries=2)
    with pytest.raises(openai.APIStatusError) as late:
        await client.chat.completions.create(
            model="default", messages=user(), extra_headers={"x-policyd-deadline-ms": "500"}
        )  # long enough that a loaded machine still reaches the provider (the answer takes 2 s)
    assert late.value.status_code == 408
    assert late.value.response.headers["x-should-retry"] == "false"
    assert len(f.daemon.engine.runtime.providers["scripted"].calls) == 1  # type: ignore[attr-defined]


async def test_rate_limit_is_a_429_with_retry_after(front):
    f = await front(FAST + "limits: {rate: {requests_per_minute: 1}}\n")
    client = f.aclient()
    await client.chat.completions.create(model="default", messages=user("one"))
    with pytest.raises(openai.RateLimitError) as limited:
        await client.chat.completions.create(model="default", messages=user("two"))
    assert limited.value.code == "rate_limit_exceeded"
    assert int(limited.value.response.headers["retry-after"]) >= 1


async def test_upstream_failure_is_a_502(front):
    f = await front(SCRIPTED, {"gpt-oss-120b": {"error": "the upstream is down"}})
    with pytest.raises(openai.InternalServerError) as failed:
        await f.aclient().chat.completions.create(model="default", messages=user())
    assert failed.value.status_code == 502
    assert failed.value.code == "upstream_failed"
    assert "the upstream is down" in failed.value.message
    assert failed.value.response.headers["x-policyd-request-id"]


async def test_authentication_and_permission_use_the_auth_section(front):
    policy = FAST + (
        "auth:\n  tenants:\n"
        f"    team-a: {{token_sha256: ['{hash_token('token-a')}']}}\n"
        f"    team-b: {{token_sha256: ['{hash_token('token-b')}'], policies: [premium]}}\n"
    )
    f = await front(policy)
    with pytest.raises(openai.AuthenticationError) as wrong:
        await f.aclient(api_key="not-a-token").chat.completions.create(model="default", messages=user())
    assert "invalid bearer token" in wrong.value.message
    with pytest.raises(openai.AuthenticationError):
        await f.aclient(api_key="not-a-token").models.list()
    with pytest.raises(openai.PermissionDeniedError) as denied:
        await f.aclient(api_key="token-b").chat.completions.create(model="default", messages=user())
    assert "may not use policy 'default'" in denied.value.message
    ok = await f.aclient(api_key="token-b").chat.completions.create(
        model="policyd/premium", messages=user(), extra_headers={"x-policyd-tenant": "team-a"}
    )
    assert ok.model_extra["policyd"]["status"] == "accepted-unvalidated"
    assert f.daemon.engine.config.raw is not None


async def test_error_before_the_first_delta_is_a_plain_http_error(front):
    f = await front(SCRIPTED, {"gpt-oss-120b": {"error": "refused"}})
    with pytest.raises(openai.InternalServerError) as failed:
        await f.aclient().chat.completions.create(model="default", messages=user(), stream=True)
    assert failed.value.status_code == 502


class BreakingProvider:
    """Streams a first piece of the answer, then fails."""

    def __init__(self, name: str, settings: NoParams) -> None:
        self.name = name

    async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
        if on_delta is not None:
            on_delta("The first half of ")
        raise UpstreamError(self.name, "connection reset mid-answer", retryable=False, status=502)

    async def aclose(self) -> None:
        return None


class BreakingPlugin:
    POLICYD_API = "1.0"

    @hookimpl
    def policyd_register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        register(ProviderSpec(kind="breaking", factory=BreakingProvider, settings=NoParams))


BREAKING = """
providers:
  breaking: {kind: breaking}
models:
  gpt-oss-120b: {provider: breaking}
policies:
  default:
    rules:
      - name: rest
        plan: {strategy: single, params: {model: gpt-oss-120b}}
"""


async def test_failure_mid_stream_raises_in_the_sdk_and_sends_no_done(front):
    host = make_host()
    host.add(BreakingPlugin(), "breaking", version="test", origin="direct")
    f = await front(BREAKING, host=host)
    stream = await f.aclient().chat.completions.create(model="default", messages=user(), stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError) as broken:
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "The first half of "
    assert "broke after it started" in broken.value.message
    body = {"model": "default", "messages": user(), "stream": True}
    async with aiohttp.ClientSession() as http, http.post(f"{f.base_url}/chat/completions", json=body) as raw:
        text = await raw.text()
    assert raw.status == 200
    assert text.rstrip().endswith("}")
    assert "[DONE]" not in text
    assert '"code":"stream_broken"' in text


async def test_successful_raw_stream_ends_with_done(front):
    f = await front()
    body = {"model": "default", "messages": user(), "stream": True}
    async with aiohttp.ClientSession() as http, http.post(f"{f.base_url}/chat/completions", json=body) as raw:
        text = await raw.text()
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert text.endswith("data: [DONE]\n\n")
    assert raw.headers["x-policyd-request-id"]


async def test_wrong_method_path_and_body(front):
    f = await front()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{f.base_url}/chat/completions") as wrong_method:
            assert wrong_method.status == 405
        async with http.get(f"{f.base_url}/nothing") as nowhere:
            assert nowhere.status == 404
        async with http.post(f"{f.base_url}/chat/completions", data=b"{not json") as bad:
            assert bad.status == 400
            assert (await bad.json())["error"]["param"] == "body"


async def test_body_over_the_receive_limit_is_a_413(front):
    f = await front(FAST + "limits: {max_receive_message_bytes: 1024}\n")
    with pytest.raises(openai.APIStatusError) as big:
        await f.aclient().chat.completions.create(model="default", messages=user("x" * 2048))
    assert big.value.status_code == 413
    assert "limits.max_receive_message_bytes" in big.value.message


@pytest.mark.parametrize("stream", [False, True])
async def test_client_going_away_cancels_the_upstream_call(front, stream: bool):
    import asyncio

    f = await front(SCRIPTED, {"gpt-oss-120b": {"text": "slow", "delay_ms": 5000}})
    provider = f.daemon.engine.runtime.providers["scripted"]
    body = {"model": "default", "messages": user(), "stream": stream}
    timeout = aiohttp.ClientTimeout(total=0.3)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        with pytest.raises(asyncio.TimeoutError):
            async with http.post(f"{f.base_url}/chat/completions", json=body) as resp:
                await resp.read()
    for _ in range(100):
        if provider.cancelled:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.02)
    assert len(provider.cancelled) == 1  # type: ignore[attr-defined]


async def test_requests_past_the_concurrency_limit_are_a_429(front):
    import asyncio

    f = await front(SCRIPTED + "limits: {max_concurrent_rpcs: 1}\n", {"gpt-oss-120b": {"text": "ok", "delay_ms": 500}})
    client = f.aclient()
    first = asyncio.create_task(client.chat.completions.create(model="default", messages=user("one")))
    await asyncio.sleep(0.2)
    with pytest.raises(openai.RateLimitError) as refused:
        await client.chat.completions.create(model="default", messages=user("two"))
    assert "limits.max_concurrent_rpcs" in refused.value.message
    assert refused.value.response.headers["retry-after"] == "1"
    assert (await first).choices[0].message.content == "ok"
