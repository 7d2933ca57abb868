"""``policyd stats`` after a mixed run: from the ledger file and from a running daemon."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from policyd.cli.main import main
from policyd.v1 import policyd_pb2 as pb

MIXED = """
version: cli-1
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
models:
  qwen3-coder-480b-a35b: {options: {simulated: {error_rate: 1.0}}}
policies:
  default:
    rules:
      - name: coding
        match: {tasks: [coding]}
        plan: {strategy: fallback, params: {models: [qwen3-coder-480b-a35b, glm-4.5]}}
      - name: rest
        plan: {strategy: single, params: {model: gpt-oss-120b}}
"""


def user(text: str, **kw: object) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)


def row_of(out: str, *cells: str) -> list[str]:
    for line in out.splitlines():
        parts = line.split()
        if parts[: len(cells)] == list(cells):
            return parts
    raise AssertionError(f"no row {cells} in:\n{out}")


async def mixed_run(stub: object) -> dict[str, float]:
    spent: dict[str, float] = {"acme": 0.0, "globex": 0.0}
    for i, (tenant, task) in enumerate([("acme", "coding"), ("acme", "chat"), ("globex", "chat"), ("acme", "chat")]):
        resp = await stub.Complete(user(f"q{i}", tenant=tenant, task=task, request_id=f"r{i}"))  # type: ignore[attr-defined]
        spent[tenant] += resp.total_cost_usd
    return spent


async def test_stats_from_the_ledger_file_shows_cost_per_success_and_follows_a_report(live, capsys):
    daemon, _, stub = await live(MIXED)
    spent = await mixed_run(stub)
    await daemon.ledger.flush()
    assert main(["stats", "--data-dir", str(daemon.data_dir), "--by", "tenant"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["tenant", "requests", "successes", "total"]
    acme = row_of(out, "acme")
    assert acme[1:3] == ["3", "3"]
    assert float(acme[4]) == pytest.approx(spent["acme"] / 3, abs=1e-6)
    assert acme[6] == "33.3%"  # one of three acme requests escalated

    await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id="r1", success=False))
    assert main(["stats", "--data-dir", str(daemon.data_dir), "--by", "tenant"]) == 0
    acme = row_of(capsys.readouterr().out, "acme")
    assert acme[1:3] == ["3", "2"]
    assert float(acme[4]) == pytest.approx(spent["acme"] / 2, abs=1e-6)


async def test_stats_from_a_running_daemon_as_json(live, capsys):
    _, running, stub = await live(MIXED)
    await mixed_run(stub)
    argv = ["stats", "--address", f"127.0.0.1:{running.port}", "--by", "policy,model", "--window", "1h", "--json"]
    assert await asyncio.to_thread(main, argv) == 0
    data = json.loads(capsys.readouterr().out)
    models = {row["group"]["model"]: row for row in data["rows"]}
    assert set(models) == {"glm-4.5", "gpt-oss-120b"}
    assert models["gpt-oss-120b"]["requests"] == "3"
    assert data["policyVersion"] == "cli-1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--window", "yesterday"], "--window: expected a number and a unit"),
        (["--by", "colour"], "--by: unknown dimension 'colour'"),
    ],
)
def test_bad_options_name_the_option(tmp_path: Path, capsys, argv: list[str], message: str):
    assert main(["stats", "--data-dir", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_ledger_says_where_it_looked(tmp_path: Path, capsys):
    assert main(["stats", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "no ledger at" in capsys.readouterr().err


async def test_stats_show_embed_requests_in_a_table_of_their_own(live, capsys):
    daemon, _, stub = await live(MIXED + "      - {name: vectors, plan: {strategy: embed, params: {model: bge-m3}}}\n")
    await stub.Complete(user("hello", tenant="acme"))
    await stub.Embed(pb.EmbedRequest(texts=["one", "two"], tenant="acme"))
    await daemon.ledger.flush()
    assert main(["stats", "--data-dir", str(daemon.data_dir), "--by", "tenant"]) == 0
    completions, embeddings = capsys.readouterr().out.split("embeddings (Embed requests")
    assert row_of(completions, "acme")[1] == "1"
    assert row_of(embeddings, "acme")[1:3] == ["1", "1"]
