"""The replay provider through a live daemon: recorded answers, costs and signals come back over gRPC."""

from __future__ import annotations

import math

from policyd.eval.records import ITEM_LABEL
from policyd.v1 import policyd_pb2 as pb
from tests.eval.synthetic import CHEAP, records, write


def config(path: str) -> str:
    return f"""
    providers:
      replay: {{kind: replay, dataset: "jsonl:{path}"}}
    catalogs: []
    models:
      {CHEAP}: {{provider: replay, upstream: {CHEAP}, input_usd_per_mtok: 0.1, output_usd_per_mtok: 0.1,
                 context_window: 8000, license: recorded}}
      other: {{provider: replay, upstream: not-recorded, input_usd_per_mtok: 1, output_usd_per_mtok: 1,
               context_window: 8000, license: recorded}}
    policies:
      default:
        rules:
          - name: missing
            match: {{labels: {{which: missing}}}}
            plan: {{strategy: single, params: {{model: other}}}}
          - name: all
            plan: {{strategy: single, params: {{model: {CHEAP}}}}}
    """


def ask(prompt: str, **labels: str) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=prompt)], labels=labels)


async def test_replay_answers_the_labelled_item_with_its_recorded_cost(live, tmp_path):
    path = write(tmp_path / "r.jsonl", n_train=3, n_test=3)
    _, _, stub = await live(config(str(path)))
    want = next(r for r in records(3, 3) if r.item == "4" and r.model == CHEAP)
    resp = await stub.Complete(ask("any text at all", **{ITEM_LABEL: "4"}))
    assert resp.output.content == want.answer
    assert resp.attempts[0].model == CHEAP
    assert (resp.attempts[0].input_tokens, resp.attempts[0].output_tokens) == (want.tokens_in, want.tokens_out)
    assert math.isclose(resp.total_cost_usd, want.cost_usd, rel_tol=1e-9)


async def test_replay_finds_an_unlabelled_request_by_its_prompt(live, tmp_path):
    path = write(tmp_path / "r.jsonl", n_train=3, n_test=3)
    _, _, stub = await live(config(str(path)))
    resp = await stub.Complete(ask("question 2: what is 2 + 2?"))
    assert resp.output.content == next(r.answer for r in records(3, 3) if r.item == "2" and r.model == CHEAP)


async def test_replay_without_a_record_fails_the_call_and_says_why(live, tmp_path):
    path = write(tmp_path / "r.jsonl", n_train=3, n_test=3)
    _, _, stub = await live(config(str(path)))
    resp = await stub.Complete(ask("x", **{ITEM_LABEL: "1", "which": "missing"}))
    assert resp.status == pb.OUTCOME_STATUS_UPSTREAM_FAILED
    assert "no recorded answer for item '1', model 'not-recorded'" in resp.attempts[0].error
    resp = await stub.Complete(ask("a prompt nobody recorded"))
    assert resp.status == pb.OUTCOME_STATUS_UPSTREAM_FAILED
    assert "no recorded item has this prompt" in resp.attempts[0].error
