"""An Embed request on the traced daemon: the same decision span and decision as a completion."""

from __future__ import annotations

from policyd.telemetry import semconv as sc
from policyd.v1 import policyd_pb2 as pb

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
