"""POST /v1/embeddings through the official ``openai`` SDK against a live daemon's HTTP front door."""

from __future__ import annotations

import array
import base64
import math

import aiohttp
import grpc.aio
import openai
import pytest

from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc

EMBED = """
version: oa-e
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
policies:
  default:
    rules:
      - name: embeddings
        plan: {strategy: embed, params: {model: text-embedding-3-small}}
      - name: chat
        plan: {strategy: single, params: {model: gpt-oss-120b}}
  local:
    rules:
      - name: local-embeddings
        plan: {strategy: embed, params: {model: nomic-embed-text-v1.5, fallback: [bge-m3]}}
"""

TEXTS = [
    "policyd routes each request to the model its policy names for the task at hand",
    "a vector index of product manuals, refreshed nightly",
]


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-6) for x, y in zip(a, b, strict=True))


async def test_sdk_default_base64_and_float_give_the_grpc_vectors(front):
    f = await front(EMBED)
    client = f.aclient()
    raw = await client.embeddings.with_raw_response.create(model="default", input=TEXTS)
    decoded = raw.parse()  # the SDK asks for base64 unless told otherwise, and decodes it
    floats = await client.embeddings.create(model="policyd/default", input=TEXTS, encoding_format="float")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{f.grpc.port}") as channel:
        grpc_resp = await policyd_pb2_grpc.PolicyServiceStub(channel).Embed(pb.EmbedRequest(texts=TEXTS))
    assert decoded.object == "list" and decoded.model == floats.model == "text-embedding-3-small"
    assert [e.index for e in decoded.data] == [0, 1]
    assert all(len(e.embedding) == 1536 for e in decoded.data)
    for a, b in zip(decoded.data, floats.data, strict=True):
        assert a.object == "embedding" and close(a.embedding, b.embedding)
    assert decoded.data[0].embedding != decoded.data[1].embedding
    assert [close(list(g.values), e.embedding) for g, e in zip(grpc_resp.embeddings, floats.data, strict=True)] == [
        True,
        True,
    ]
    assert decoded.usage.prompt_tokens == decoded.usage.total_tokens > 0
    detail = decoded.model_extra["policyd"]
    assert (detail["explanation"]["rule"], detail["explanation"]["strategy"]) == ("embeddings", "embed")
    assert detail["dimensions"] == 1536
    assert raw.headers["x-policyd-request-id"] == detail["request_id"]
    assert raw.headers["x-policyd-strategy"] == "embed"


async def test_explicit_base64_is_little_endian_float32(front):
    f = await front(EMBED)
    client = f.aclient()
    encoded = await client.embeddings.create(model="default", input=TEXTS[0], encoding_format="base64")
    floats = await client.embeddings.create(model="default", input=TEXTS[0], encoding_format="float")
    text = encoded.data[0].embedding
    assert isinstance(text, str)  # asked for explicitly: the SDK leaves it to the caller
    values = array.array("f", base64.b64decode(text))
    assert close(values.tolist(), floats.data[0].embedding)


async def test_dimensions_shorten_the_vectors(front):
    f = await front(EMBED)
    resp = await f.aclient().embeddings.create(model="default", input=TEXTS, dimensions=64)
    assert [len(e.embedding) for e in resp.data] == [64, 64]
    assert resp.model_extra["policyd"]["dimensions"] == 64


async def test_a_cached_second_call_costs_nothing(front):
    f = await front(EMBED)
    client = f.aclient()
    first = await client.embeddings.with_raw_response.create(model="default", input=TEXTS, user="u-1")
    second = await client.embeddings.with_raw_response.create(model="default", input=TEXTS, user="u-1")
    assert float(first.headers["x-policyd-cost-usd"]) > 0
    assert float(second.headers["x-policyd-cost-usd"]) == 0
    detail = second.parse().model_extra["policyd"]
    assert detail["cached"] == [True, True] and detail["saved_usd"] > 0
    for a, b in zip(first.parse().data, second.parse().data, strict=True):
        assert close(a.embedding, b.embedding)


async def test_direct_model_call_goes_where_the_policy_allows(front):
    f = await front(EMBED)
    client = f.aclient()
    resp = await client.embeddings.create(
        model="bge-m3", input=TEXTS, extra_headers={"x-policyd-policy": "local"}, encoding_format="float"
    )
    assert resp.model == "bge-m3" and len(resp.data[0].embedding) == 1024
    with pytest.raises(openai.ConflictError) as err:
        await client.embeddings.create(model="bge-m3", input=TEXTS)  # the default policy embeds with OpenAI's only
    assert err.value.code == "failed_precondition"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [[1, 2, 3]]}, "input"),
        ({"input": [101, 102]}, "input"),
        ({"input": ["fine", ""]}, "input[1]"),
        ({"input": []}, "input"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
    ],
)
async def test_bad_input_is_a_bad_request_naming_the_field(front, body, param):
    f = await front(EMBED)
    with pytest.raises(openai.BadRequestError) as err:
        await f.aclient().embeddings.create(model="default", **body)
    assert err.value.param == param
    assert err.value.code == "invalid_argument"


async def test_plain_http_defaults_to_floats_and_errors_name_the_field(front):
    f = await front(EMBED)
    url = f"{f.base_url}/embeddings"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"model": "default", "input": "x"}) as ok:
            assert ok.status == 200
            assert isinstance((await ok.json())["data"][0]["embedding"], list)  # float unless asked
        async with http.post(url, json={"model": "default", "input": "x", "encoding_format": "hex"}) as bad:
            assert bad.status == 400 and (await bad.json())["error"]["param"] == "encoding_format"
        async with http.post(url, json={"input": "x"}) as missing:
            assert missing.status == 400 and (await missing.json())["error"]["param"] == "model"
        async with http.get(url) as wrong:
            assert wrong.status == 405 and wrong.headers["allow"] == "POST"
