"""``policyd router train`` from eval records and from a live daemon's ledger (caller reports included)."""

from __future__ import annotations

import json
from pathlib import Path

from policyd.cli.main import main
from policyd.eval.routerfile import load
from policyd.v1 import policyd_pb2 as pb
from tests.eval.synthetic import CHEAP, STRONG, write


def test_router_train_from_eval_records_fits_on_train_only(tmp_path, capsys):
    data = write(tmp_path / "r.jsonl")
    out = tmp_path / "router.json"
    code = main(["router", "train", "--dataset", f"jsonl:{data}", "--gate", "logprob", "--out", str(out)])
    assert code == 0
    said = capsys.readouterr().out
    assert "120 train items of synthetic" in said and "gate logprob threshold" in said
    router = load(out)
    assert router.meta["cheap"] == CHEAP and router.meta["strong"] == STRONG
    assert router.meta["trained_items"] == 120
    assert repr(router.threshold) in said


def test_router_train_refuses_a_non_json_file_and_an_unknown_model(tmp_path, capsys):
    data = write(tmp_path / "r.jsonl")
    assert main(["router", "train", "--dataset", f"jsonl:{data}", "--out", str(tmp_path / "r.pkl")]) == 2
    assert "a router file is JSON" in capsys.readouterr().err
    args = ["router", "train", "--dataset", f"jsonl:{data}", "--cheap", "nope", "--out", str(tmp_path / "r.json")]
    assert main(args) == 2
    assert "has no model 'nope'" in capsys.readouterr().err


CHEAP_ONLY = """
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
policies:
  default:
    rules:
      - name: cheap
        plan: {strategy: single, params: {model: llama-3.1-8b}}
"""


async def test_router_train_from_the_ledger_learns_from_caller_reports(live, tmp_path: Path, capsys):
    data_dir = tmp_path / "state"
    _, _, stub = await live(CHEAP_ONLY, data_dir=data_dir)
    for i in range(30):
        task = "proofs" if i % 2 else "greetings"
        msg = pb.Message(role=pb.ROLE_USER, content=f"request {i}")
        await stub.Complete(pb.CompleteRequest(messages=[msg], task=task, request_id=f"r{i}"))
        if task == "proofs":  # the caller tells us the cheap model's answer was wrong
            await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id=f"r{i}", success=False))
    await stub.GetStats(pb.GetStatsRequest())
    out = tmp_path / "ledger-router.json"
    args = ["router", "train", "--ledger", "--data-dir", str(data_dir), "--cheap", "llama-3.1-8b"]
    code = main([*args, "--strong", "gpt-oss-120b", "--threshold", "0.5", "--out", str(out)])
    assert code == 0
    assert "15 labelled by caller reports" in capsys.readouterr().out
    router = load(out)
    assert router.vectorizer.inputs == ("task", "tenant")
    assert router.score("", task="proofs", tenant="default") > 0.5 > router.score("", task="greetings")
    assert json.loads(out.read_text())["meta"]["from_caller_reports"] == 15


def test_router_train_with_the_learned_gate_writes_both_cuts(tmp_path, capsys):
    data = write(tmp_path / "r.jsonl")
    out = tmp_path / "router.json"
    assert main(["router", "train", "--dataset", f"jsonl:{data}", "--gate", "learned", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    router = load(out)
    assert router.post is not None
    assert f"escalates at P(wrong) >= {router.post.threshold!r}" in said
    # The learned gate reads the answer's log-probability: a confident answer scores lower.
    sure = router.post.score(router.vectorizer, "question 1: what is 1 + 1?", "#### 2", (-0.01,))
    unsure = router.post.score(router.vectorizer, "question 1: what is 1 + 1?", "#### 2", (-1.5,))
    assert sure < unsure
