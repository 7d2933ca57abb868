"""``stream_draft: provisional`` through the live daemon: a gated draft streams as provisional text
that the gate's verdict confirms or retracts; off, the answer arrives as one delta after the gate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from policyd.plugin.manager import PluginHost
from policyd.v1 import policyd_pb2 as pb
from tests.scripted import ScriptedPlugin


@pytest.fixture
def scripted_host(host: PluginHost) -> Iterator[PluginHost]:
    host.add(ScriptedPlugin(), "scripted-test", version="test", origin="direct")
    yield host
    host.remove("scripted-test")


def config(script: dict[str, object], *, stream_draft: str | None, rounds: int = 2, escalate: bool = False) -> str:
    params: dict[str, object] = {
        "drafters": ["gpt-oss-120b"],
        "validator": {"name": "llm-judge", "model": "claude-sonnet-4"},
        "max_rounds": rounds,
    }
    if escalate:
        params["escalate_to"] = "claude-sonnet-4"
    plan: dict[str, object] = {"strategy": "draft-validate", "params": params}
    if stream_draft is not None:
        plan["stream_draft"] = stream_draft
    return yaml.safe_dump(
        {
            "providers": {"scripted": {"kind": "scripted", "script": script}},
            "models": {"gpt-oss-120b": {"provider": "scripted"}, "claude-sonnet-4": {"provider": "scripted"}},
            "policies": {"default": {"rules": [{"name": "judged", "plan": plan}]}},
        }
    )


def ask(text: str) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], task="math")


def text_events(events: list[pb.StreamCompleteResponse]) -> list[tuple[str, object]]:
    """The stream's text-bearing events in order: (kind, text or (confirmed, reason))."""
    out: list[tuple[str, object]] = []
    for e in events:
        kind = e.WhichOneof("event")
        if kind == "delta":
            out.append(("delta", e.delta))
        elif kind == "provisional_delta":
            out.append(("provisional", e.provisional_delta))
        elif kind == "provisional_verdict":
            out.append(("verdict", (e.provisional_verdict.confirmed, e.provisional_verdict.reason)))
    return out


async def test_an_accepted_draft_streams_provisionally_and_is_confirmed_without_a_repeat(live, scripted_host):
    script = {"gpt-oss-120b": ["13"], "claude-sonnet-4@validate": ['{"verdict": "accept"}']}
    _, _, stub = await live(config(script, stream_draft="provisional"), host=scripted_host)
    events = [e async for e in stub.StreamComplete(ask("a prime above 10"))]

    assert text_events(events) == [("provisional", "13"), ("verdict", (True, ""))]
    kinds = [e.WhichOneof("event") for e in events]
    verdict_at, judged_at = kinds.index("provisional_verdict"), max(i for i, k in enumerate(kinds) if k == "attempt")
    assert verdict_at > judged_at, "the confirmation follows the judge's attempt (the gate)"
    final = events[-1].final
    assert final.status == pb.OUTCOME_STATUS_ACCEPTED and final.output.content == "13"


async def test_a_rejected_draft_is_retracted_and_the_next_draft_streams_provisionally(live, scripted_host):
    script = {
        "gpt-oss-120b": ["12", "13"],
        "claude-sonnet-4@validate": ['{"verdict": "reject", "reason": "12 is not prime"}', '{"verdict": "accept"}'],
    }
    _, _, stub = await live(config(script, stream_draft="provisional"), host=scripted_host)
    events = [e async for e in stub.StreamComplete(ask("a prime above 10"))]

    assert text_events(events) == [
        ("provisional", "12"),
        ("verdict", (False, "reject by llm-judge: 12 is not prime")),
        ("provisional", "13"),
        ("verdict", (True, "")),
    ]
    assert events[-1].final.output.content == "13"


async def test_a_repaired_draft_is_retracted_and_the_repair_follows_as_one_delta(live, scripted_host):
    repair = '{"verdict": "repair", "reason": "12 is even", "output": "13"}'
    script = {"gpt-oss-120b": ["12"], "claude-sonnet-4@validate": [repair]}
    _, _, stub = await live(config(script, stream_draft="provisional"), host=scripted_host)
    events = [e async for e in stub.StreamComplete(ask("a prime above 10"))]

    assert text_events(events) == [
        ("provisional", "12"),
        ("verdict", (False, "repair by llm-judge: 12 is even")),
        ("delta", "13"),
    ]
    assert events[-1].final.output.content == "13"


async def test_after_a_retraction_the_escalation_answer_follows_as_plain_deltas(live, scripted_host):
    script = {
        "gpt-oss-120b": ["12"],
        "claude-sonnet-4@validate": ['{"verdict": "reject", "reason": "12 is not prime"}'],
        "claude-sonnet-4": ["17"],
    }
    _, _, stub = await live(config(script, stream_draft="provisional", rounds=1, escalate=True), host=scripted_host)
    events = [e async for e in stub.StreamComplete(ask("a prime above 10"))]

    assert text_events(events) == [
        ("provisional", "12"),
        ("verdict", (False, "reject by llm-judge: 12 is not prime")),
        ("delta", "17"),
    ]
    final = events[-1].final
    assert final.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED and final.output.content == "17"


async def test_a_rejected_last_draft_is_retracted_and_nothing_follows(live, scripted_host):
    script = {"gpt-oss-120b": ["12"], "claude-sonnet-4@validate": ['{"verdict": "reject", "reason": "not prime"}']}
    _, _, stub = await live(config(script, stream_draft="provisional", rounds=1), host=scripted_host)
    events = [e async for e in stub.StreamComplete(ask("a prime above 10"))]

    assert text_events(events) == [("provisional", "12"), ("verdict", (False, "reject by llm-judge: not prime"))]
    assert events[-1].final.status == pb.OUTCOME_STATUS_REJECTED


@pytest.mark.parametrize("stream_draft", [None, "off"])
async def test_off_the_answer_is_one_delta_after_the_gate(live, scripted_host, stream_draft):
    script = {
        "gpt-oss-120b": ["12", "13"],
        "claude-sonnet-4@validate": ['{"verdict": "reject", "reason": "12 is not prime"}', '{"verdict": "accept"}'],
    }
    _, _, stub = await live(config(script, stream_draft=stream_draft), host=scripted_host)
    events = [e async for e in stub.StreamComplete(ask("a prime above 10"))]

    assert text_events(events) == [("delta", "13")]
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-2:] == ["delta", "final"] and kinds.count("attempt") == 4, "one delta, after every attempt"


async def test_a_draft_left_unjudged_by_the_budget_is_settled_by_the_answer(live, scripted_host):
    script = {"gpt-oss-120b": ["13"], "claude-sonnet-4@validate": ['{"verdict": "accept"}']}
    text = config(script, stream_draft="provisional", rounds=1)
    prices = {"input_usd_per_mtok": 0, "output_usd_per_mtok": 0}
    doc = yaml.safe_load(text)
    doc["models"]["gpt-oss-120b"].update(prices)
    doc["models"]["claude-sonnet-4"].update({"input_usd_per_mtok": 1000, "output_usd_per_mtok": 1000})
    _, _, stub = await live(yaml.safe_dump(doc), host=scripted_host)
    request = ask("a prime above 10")
    request.constraints.max_cost_usd = 0.0001  # the free draft runs; its judge cannot be paid for
    events = [e async for e in stub.StreamComplete(request)]

    final = events[-1].final
    assert final.status == pb.OUTCOME_STATUS_BUDGET_EXHAUSTED and final.output.content == "13"
    assert text_events(events) == [("provisional", "13"), ("verdict", (True, ""))], "the best answer: no repeat"
    assert events[-2].WhichOneof("event") == "provisional_verdict", "settled at the end, by the answer returned"
