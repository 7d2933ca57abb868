"""Embed end to end: a real grpc.aio daemon, real HTTP to fakes of OpenAI's and Gemini's embedding APIs."""

from __future__ import annotations

import math
import textwrap
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from embed_fakes import EmbeddingUpstream, fake_vector

from policyd.embedding import EmbedRequest
from policyd.types import OutcomeStatus
from policyd.v1 import policyd_pb2 as pb

SECRET = "sk-embed-test-0123456789abcdef"


@pytest.fixture
async def fake() -> AsyncIterator[EmbeddingUpstream]:
    upstream = EmbeddingUpstream()
    await upstream.start()
    yield upstream
    await upstream.stop()


def config(
    fake: EmbeddingUpstream,
    *,
    primary: str = "text-embedding-3-small",
    fallback: str = "gemini-embedding-001",
    openai_extra: str = "",
    budgets: str = "",
) -> str:
    return f"""
version: e1
providers:
  simulated: {{kind: simulated, latency_scale: 0.0}}
  oa: {{kind: openai-compatible, base_url: "{fake.url}/v1", api_key_env: EMBED_TEST_KEY{openai_extra}}}
  gem: {{kind: gemini, base_url: "{fake.url}"}}
models:
  text-embedding-3-small: {{provider: oa, options: {{dimensions: 8, min_dimensions: 1}}}}
  gemini-embedding-001: {{provider: gem, options: {{dimensions: 8, min_dimensions: 2}}}}
retries: {{max_attempts: 2, backoff_base_s: 0.01, backoff_max_s: 0.02}}
{budgets}
policies:
  default:
    rules:
      - name: chat
        plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}
      - name: local-embeddings
        match: {{tasks: [local]}}
        plan: {{strategy: embed, params: {{model: text-embedding-3-small, fallback: [nomic-embed-text-v1.5]}}}}
      - name: embeddings
        plan: {{strategy: embed, params: {{model: {primary}, fallback: [{fallback}]}}}}
"""


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBED_TEST_KEY", SECRET)


def values(resp: pb.EmbedResponse) -> list[list[float]]:
    return [list(e.values) for e in resp.embeddings]


def close(a: list[float], b: list[float]) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-6) for x, y in zip(a, b, strict=True))


async def test_offline_default_embeds_with_no_key_and_caches_each_text(live):
    _, _, stub = await live()
    texts = ["the cat sat on the mat", "a cat sat on a mat", "the cat sat on the mat"]
    resp = await stub.Embed(pb.EmbedRequest(texts=texts, request_id="e-1"))
    assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    assert (resp.model, resp.dimensions, resp.explanation.rule) == ("nomic-embed-text-v1.5", 768, "embeddings")
    vecs = values(resp)
    assert [len(v) for v in vecs] == [768] * 3
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-5) for v in vecs)
    assert vecs[0] == vecs[2]
    similar = sum(x * y for x, y in zip(vecs[0], vecs[1], strict=True))
    assert 0.3 < similar < 1.0, similar
    again = await stub.Embed(pb.EmbedRequest(texts=["a cat sat on a mat", "something new"]))
    assert [e.cached for e in again.embeddings] == [True, False]
    assert values(again)[0] == vecs[1]
    short = await stub.Embed(pb.EmbedRequest(texts=["the cat sat on the mat"], dimensions=64))
    assert short.dimensions == 64 and len(short.embeddings[0].values) == 64


async def test_completions_never_match_embedding_rules_and_embed_never_matches_completion_rules(live, fake):
    _, _, stub = await live(config(fake))
    done = await stub.Complete(pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")]))
    assert done.explanation.rule == "chat"
    resp = await stub.Embed(pb.EmbedRequest(texts=["hi"]))
    assert resp.explanation.rule == "embeddings"
    assert list(resp.explanation.models) == ["text-embedding-3-small", "gemini-embedding-001"]


async def test_openai_batch_larger_than_the_upstream_limit_is_split_and_reassembled_in_order(live, fake):
    _, _, stub = await live(config(fake))
    texts = [f"document number {i}" for i in range(2100)]
    resp = await stub.Embed(pb.EmbedRequest(texts=texts))
    assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    assert sorted(fake.batch_sizes("openai"), reverse=True) == [2048, 52]
    vecs = values(resp)
    assert close(vecs[0], fake_vector("text-embedding-3-small", texts[0], 8))
    assert close(vecs[2099], fake_vector("text-embedding-3-small", texts[2099], 8))
    assert resp.input_tokens == 3 * 2100  # the upstream's usage.prompt_tokens, summed
    assert math.isclose(resp.total_cost_usd, 3 * 2100 * 0.02 / 1e6, rel_tol=1e-9)
    assert fake.seen[0].headers["authorization"] == f"Bearer {SECRET}"
    assert "dimensions" not in fake.seen[0].body  # the model's own length is not asked for


async def test_openai_base64_encoding_and_shorter_dimensions(live, fake):
    """The fake packs little-endian float32 values in base64, as OpenAI does; the daemon decodes them."""
    _, _, stub = await live(config(fake, openai_extra=", embedding_encoding: base64, embedding_batch_size: 3"))
    texts = ["one", "two", "three", "four"]
    resp = await stub.Embed(pb.EmbedRequest(texts=texts, dimensions=4))
    assert fake.batch_sizes("openai") == [3, 1]
    assert fake.seen[0].body["encoding_format"] == "base64" and fake.seen[0].body["dimensions"] == 4
    assert resp.dimensions == 4
    assert close(values(resp)[3], fake_vector("text-embedding-3-small", "four", 4))


async def test_gemini_batch_embed_contents_up_to_100_and_embed_content_for_one(live, fake):
    _, _, stub = await live(config(fake, primary="gemini-embedding-001", fallback="nomic-embed-text-v1.5"))
    texts = [f"passage {i}" for i in range(250)]
    resp = await stub.Embed(pb.EmbedRequest(texts=texts, dimensions=4))
    assert resp.model == "gemini-embedding-001"
    assert sorted(fake.batch_sizes("gemini")) == [50, 100, 100]
    assert all(r.body["requests"][0]["outputDimensionality"] == 4 for r in fake.seen)
    assert close(values(resp)[249], fake_vector("gemini-embedding-001", texts[249], 4))
    assert resp.attempts[0].usage_estimated  # Gemini reports no usage for embeddings
    one = await stub.Embed(pb.EmbedRequest(texts=["a single passage"]))
    assert fake.seen[-1].path.endswith(":embedContent")
    assert close(values(one)[0], fake_vector("gemini-embedding-001", "a single passage", 8))


async def test_a_transient_failure_mid_batch_is_retried_and_keeps_one_model(live, fake):
    _, _, stub = await live(config(fake, openai_extra=", embedding_batch_size: 10"))
    fake.fail = {2: (503, "try again")}
    texts = [f"t{i}" for i in range(30)]
    resp = await stub.Embed(pb.EmbedRequest(texts=texts))
    assert resp.model == "text-embedding-3-small"
    assert [a.model for a in resp.attempts] == ["text-embedding-3-small"]
    assert len(fake.seen) == 4  # three batches and one retry


async def test_a_failure_mid_batch_falls_back_and_reembeds_the_whole_batch(live, fake):
    daemon, _, stub = await live(config(fake, openai_extra=", embedding_batch_size: 10"))
    daemon.engine.embedder.retry.breakers.clear()
    fake.fail = {n: (500, f"boom, key {SECRET}") for n in (2, 3)}  # the second OpenAI batch, and its retry
    texts = [f"t{i}" for i in range(20)]
    params = pb.EmbedRequest(texts=texts)
    resp = await stub.Embed(params)
    assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    assert [(a.model, bool(a.error)) for a in resp.attempts] == [
        ("text-embedding-3-small", True),
        ("gemini-embedding-001", False),
    ]
    assert resp.model == "gemini-embedding-001"
    for text, vec in zip(texts, values(resp), strict=True):  # never a mix of two models' vectors
        assert close(vec, fake_vector("gemini-embedding-001", text, 8))
    assert SECRET not in resp.attempts[0].error
    assert sorted(fake.batch_sizes("gemini")) == [20]
    # The OpenAI chunk that did arrive was cached: once the upstream recovers, only the rest is paid for.
    fake.fail = {}
    daemon.engine.embedder.retry.breakers.clear()
    before = len(fake.seen)
    again = await stub.Embed(params)
    assert again.model == "text-embedding-3-small"
    assert sum(e.cached for e in again.embeddings) == 10
    assert fake.batch_sizes("openai")[-1] == 10 and len(fake.seen) == before + 1


async def test_a_batch_with_90_percent_repeated_texts_pays_for_10_percent(live, fake):
    _, _, stub = await live(config(fake))
    first = [f"known text {i}" for i in range(90)] + [f"first new {i}" for i in range(10)]
    cold = await stub.Embed(pb.EmbedRequest(texts=first))
    warm = await stub.Embed(pb.EmbedRequest(texts=first[:90] + [f"second new {i}" for i in range(10)]))
    assert sum(e.cached for e in warm.embeddings) == 90
    assert math.isclose(warm.total_cost_usd, cold.total_cost_usd * 0.1, rel_tol=0.01)
    assert warm.saved_usd > 0
    assert fake.batch_sizes("openai")[-1] == 10
    other = await stub.Embed(pb.EmbedRequest(texts=first[:1], tenant="someone-else"))
    assert not other.embeddings[0].cached  # the cache is per tenant


async def test_constraints_choose_the_model_and_the_cost_cap_is_kept(live, fake):
    _, _, stub = await live(config(fake))
    local = await stub.Embed(pb.EmbedRequest(texts=["x"], task="local", constraints=pb.Constraints(local_only=True)))
    assert local.model == "nomic-embed-text-v1.5"
    assert local.attempts[0].error == "excluded by constraints.local_only"
    poor = await stub.Embed(pb.EmbedRequest(texts=["x" * 400], constraints=pb.Constraints(max_cost_usd=1e-9)))
    assert poor.status == pb.OUTCOME_STATUS_BUDGET_EXHAUSTED
    assert not poor.embeddings and not fake.seen


async def test_budgets_reserve_and_settle_and_stats_keep_embeddings_apart(live, fake):
    budgets = "budgets: {tenants: {'*': {daily_usd: 1.0}}}"
    _, _, stub = await live(config(fake, budgets=budgets))
    await stub.Complete(pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")]))
    resp = await stub.Embed(pb.EmbedRequest(texts=["alpha beta", "gamma"]))
    stats = await stub.GetStats(pb.GetStatsRequest())
    assert [r.requests for r in stats.rows] == [1]
    assert [r.requests for r in stats.embedding_rows] == [1]
    assert math.isclose(stats.embedding_rows[0].total_cost_usd, resp.total_cost_usd, rel_tol=1e-9)
    grouped = await stub.GetStats(pb.GetStatsRequest(group_by=[pb.STATS_GROUP_MODEL]))
    assert [dict(r.group) for r in grouped.embedding_rows] == [{"model": "text-embedding-3-small"}]


async def test_bad_embed_requests_name_the_field(live):
    _, _, stub = await live()
    for request, field in (
        (pb.EmbedRequest(), "texts"),
        (pb.EmbedRequest(texts=["ok", ""]), "texts[1]"),
        (pb.EmbedRequest(texts=["ok"], dimensions=0), "dimensions"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Embed(request)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (info.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Embed(pb.EmbedRequest(texts=["x"], dimensions=5000))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "nomic-embed-text-v1.5 gives 64 to 768 dimensions (asked for 5000)" in (info.value.details() or "")


async def test_a_tenant_budget_too_small_for_the_batch_refuses_it_before_any_call(live, fake):
    budgets = "budgets: {tenants: {'*': {daily_usd: 0.0000001}}}"
    _, _, stub = await live(config(fake, budgets=budgets))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Embed(pb.EmbedRequest(texts=["a long text " * 200]))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "tenant 'default' daily budget" in (info.value.details() or "")
    assert not fake.seen


async def test_over_budget_with_downgrade_embeds_on_the_downgrade_policy(live, fake):
    text = config(fake) + textwrap.dedent(
        """
          cheap:
            rules:
              - name: local-only
                # a free model reserves its cost cap: keep it under the budget
                plan: {strategy: embed, max_cost_usd: 0.00000005, params: {model: bge-m3}}
        budgets: {tenants: {'*': {daily_usd: 0.0000001}}, on_exceeded: downgrade, downgrade_policy: cheap}
        """
    )
    _, _, stub = await live(text)
    resp = await stub.Embed(pb.EmbedRequest(texts=["a long text " * 200]))
    assert (resp.explanation.policy, resp.model) == ("cheap", "bge-m3")
    assert any("downgraded to policy 'cheap'" in w for w in resp.explanation.warnings)
    assert not fake.seen


async def test_the_deadline_bounds_every_upstream_request_of_the_batch(live, fake):
    daemon, _, _ = await live(config(fake))
    fake.delay_s = 5.0
    started = time.monotonic()
    result = await daemon.engine.embed(EmbedRequest(request_id="slow", texts=("x", "y"), deadline=started + 0.5))
    elapsed = time.monotonic() - started
    assert result.outcome.status is OutcomeStatus.DEADLINE_EXCEEDED
    assert elapsed < 1.5, elapsed
    assert not result.vectors
