"""An Embed request on the traced daemon: the same decision span and decision as a completion."""

from __future__ import annotations

from policyd.telemetry import semconv as sc
from policyd.v1 import policyd_pb2 as pb
from tests.telemetry.support import points

POLICY = """
version: tel-embed
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
policies:
  default:
    rules:
      - name: chat
        plan: {strategy: single, params: {model: gpt-oss-120b}}
      - name: embeddings
        plan: {strategy: embed, params: {model: nomic-embed-text-v1.5, fallback: [text-embedding-3-small]}}
"""


async def test_embed_runs_inside_a_decision_span_naming_the_embedding_rule(traced):
    t = await traced(POLICY)
    resp = await t.stub.Embed(pb.EmbedRequest(texts=["one", "two"], request_id="emb-1"))

    assert resp.trace_id and resp.decision_id
    (decision,) = t.by_name(sc.SPAN_DECISION)
    d = decision.attributes
    assert (d[sc.POLICYD_RULE], d[sc.POLICYD_STRATEGY]) == ("embeddings", "embed")
    assert d[sc.POLICYD_OUTCOME] == "accepted-unvalidated"
    assert d[sc.POLICYD_DECISION_ID] == resp.decision_id
    assert format(decision.context.trace_id, "032x") == resp.trace_id


async def test_each_model_sent_texts_is_one_embeddings_span_under_the_decision(traced):
    t = await traced(POLICY)
    await t.stub.Embed(pb.EmbedRequest(texts=["alpha", "beta"]))
    resp = await t.stub.Embed(pb.EmbedRequest(texts=["alpha", "gamma"], dimensions=64))

    spans = t.by_name("embeddings ")
    assert [s.name for s in spans] == ["embeddings nomic-ai/nomic-embed-text-v1.5"] * 2
    last = spans[-1]
    (decision,) = [d for d in t.by_name(sc.SPAN_DECISION) if d.attributes[sc.POLICYD_DECISION_ID] == resp.decision_id]
    assert last.parent.span_id == decision.context.span_id
    a = last.attributes
    assert a[sc.GEN_AI_OPERATION_NAME] == "embeddings"
    assert a[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 64
    assert (a[sc.POLICYD_EMBED_TEXTS], a[sc.POLICYD_EMBED_CACHED_TEXTS]) == (2, 0)  # another length: other keys
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == resp.input_tokens
    assert "alpha" not in str(dict(a))  # never the texts


async def test_embeddings_count_in_the_gen_ai_client_metrics_as_their_own_operation(traced):
    t = await traced(POLICY)
    first = await t.stub.Embed(pb.EmbedRequest(texts=["alpha", "beta"]))
    await t.stub.Embed(pb.EmbedRequest(texts=["alpha", "beta"]))  # all cached: no upstream work to count

    got = points(t.metrics)
    usage = [p for p in got[sc.METRIC_TOKEN_USAGE] if p.attributes[sc.GEN_AI_OPERATION_NAME] == "embeddings"]
    assert [(p.count, p.sum) for p in usage] == [(1, first.input_tokens)]
    assert usage[0].attributes[sc.GEN_AI_TOKEN_TYPE] == "input"
    durations = [p for p in got[sc.METRIC_OPERATION_DURATION] if p.attributes[sc.GEN_AI_OPERATION_NAME] == "embeddings"]
    assert [p.count for p in durations] == [1]
