"""An LLM judge through the live daemon: streamed once per attempt, and re-asked on an unreadable verdict."""

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


def config(script: dict[str, object]) -> str:
    return yaml.safe_dump(
        {
            "providers": {"scripted": {"kind": "scripted", "script": script}},
            "models": {"gpt-oss-120b": {"provider": "scripted"}, "claude-sonnet-4": {"provider": "scripted"}},
            "policies": {
                "default": {
                    "rules": [
                        {
                            "name": "judged",
                            "plan": {
                                "strategy": "draft-validate",
                                "params": {
                                    "drafters": ["gpt-oss-120b"],
                                    "validator": {"name": "llm-judge", "model": "claude-sonnet-4"},
                                    "max_rounds": 2,
                                },
                            },
                        }
                    ]
                }
            },
        }
    )


def ask(text: str) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], task="math")


async def test_a_streamed_judge_attempt_is_sent_once_with_its_verdict(live, scripted_host):
    script = {"gpt-oss-120b": ["13"], "claude-sonnet-4@validate": ['{"verdict": "accept"}']}
    _, _, stub = await live(config(script), host=scripted_host)
    events = [e async for e in stub.StreamComplete(ask("a prime above 10"))]

    attempts = [e.attempt for e in events if e.WhichOneof("event") == "attempt"]
    final = events[-1].final
    assert [a.index for a in attempts] == [0, 1], "each attempt streamed exactly once"
    assert attempts[1].role == pb.ATTEMPT_ROLE_VALIDATE and attempts[1].verdict.kind == pb.Verdict.KIND_ACCEPT
    assert sum(a.cost_usd for a in attempts) == pytest.approx(final.total_cost_usd)
    assert list(final.attempts) == attempts


async def test_an_unreadable_verdict_is_asked_again_on_the_same_draft(live, scripted_host):
    script = {
        "gpt-oss-120b": ["12", "13"],
        "claude-sonnet-4@validate": [
            "Looks fine to me!",
            '{"verdict": "reject", "reason": "12 is not prime"}',
            '{"verdict": "accept"}',
        ],
    }
    _, _, stub = await live(config(script), host=scripted_host)
    resp = await stub.Complete(ask("name a prime above 10"))

    roles = [(a.role, a.verdict.kind) for a in resp.attempts]
    assert roles == [
        (pb.ATTEMPT_ROLE_DRAFT, pb.Verdict.KIND_UNSPECIFIED),
        (pb.ATTEMPT_ROLE_VALIDATE, pb.Verdict.KIND_UNSPECIFIED),  # the unreadable answer: asked again at once
        (pb.ATTEMPT_ROLE_VALIDATE, pb.Verdict.KIND_REJECT),
        (pb.ATTEMPT_ROLE_DRAFT, pb.Verdict.KIND_UNSPECIFIED),  # the next round, with the reason fed back
        (pb.ATTEMPT_ROLE_VALIDATE, pb.Verdict.KIND_ACCEPT),
    ]
    assert resp.attempts[2].verdict.reason == "12 is not prime"
    assert resp.output.content == "13" and resp.status == pb.OUTCOME_STATUS_ACCEPTED
    assert not any(a.cached for a in resp.attempts), "no garbage verdict is read back from the cache"


async def test_a_rejected_draft_is_never_the_output_but_stays_on_its_attempt(live, scripted_host):
    script = {
        "gpt-oss-120b": ["12", "14"],
        "claude-sonnet-4@validate": ['{"verdict": "reject", "reason": "not prime"}'],
    }
    _, _, stub = await live(config(script), host=scripted_host)
    resp = await stub.Complete(ask("name a prime above 10"))

    assert resp.status == pb.OUTCOME_STATUS_REJECTED
    assert not resp.HasField("output"), "rejected text is not an answer"
    drafts = [a for a in resp.attempts if a.role == pb.ATTEMPT_ROLE_DRAFT]
    assert [d.output.content for d in drafts] == ["12", "14"]
    assert all(not a.HasField("output") for a in resp.attempts if a.role == pb.ATTEMPT_ROLE_VALIDATE)
