"""The bundled default policy end to end: a real daemon on the simulated provider.

Each request goes through gRPC, the engine, the strategies and the validators, and
the simulated models (which also play the judge). The simulation is deterministic,
so a fixed set of prompts always shows accepts, repairs and escalations.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math

from policyd.v1 import policyd_pb2 as pb

WEATHER = pb.Tool(
    name="get_weather",
    description="Current weather for a city",
    parameters_json_schema=json.dumps(
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    ),
)


def ask(text: str, **kw: object) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)


async def complete_all(stub, requests: list[pb.CompleteRequest]) -> list[pb.CompleteResponse]:
    return list(await asyncio.gather(*(stub.Complete(r, timeout=30) for r in requests)))


def check_costs(resp: pb.CompleteResponse) -> None:
    assert math.isclose(resp.total_cost_usd, sum(a.cost_usd for a in resp.attempts), abs_tol=1e-12)
    for a in resp.attempts:
        if a.model:
            assert a.cost_usd > 0 and a.input_tokens > 0 and a.output_tokens > 0, a
        else:
            assert a.role == pb.ATTEMPT_ROLE_VALIDATE and a.cost_usd == 0, "only free validators call no model"


async def test_draft_validate_shows_accepts_repairs_and_escalations(live) -> None:
    _, _, stub = await live()
    responses = await complete_all(stub, [ask(f"A short poem, take {i}", task="creative") for i in range(60)])
    seen: dict[str, pb.CompleteResponse] = {}
    for resp in responses:
        check_costs(resp)
        assert resp.explanation.strategy == "draft-validate"
        judged = [a for a in resp.attempts if a.role == pb.ATTEMPT_ROLE_VALIDATE]
        assert judged and all(a.model == "claude-sonnet-4" and a.verdict.validator == "llm-judge" for a in judged)
        assert resp.attempts[0].role == pb.ATTEMPT_ROLE_DRAFT and resp.attempts[0].model == "glm-4.5"
        last = resp.attempts[-1]
        if last.role == pb.ATTEMPT_ROLE_ESCALATE:
            seen["escalate"] = resp
        else:
            seen[pb.Verdict.Kind.Name(last.verdict.kind)] = resp
    assert set(seen) == {"KIND_ACCEPT", "KIND_REPAIR", "escalate"}

    accepted = seen["KIND_ACCEPT"]
    assert accepted.status == pb.OUTCOME_STATUS_ACCEPTED
    assert accepted.output.content.startswith("[simulated answer by glm-4.5"), "the accepted draft is the answer"

    repaired = seen["KIND_REPAIR"]
    assert repaired.status == pb.OUTCOME_STATUS_ACCEPTED
    assert repaired.output.content.startswith("[simulated repair by claude-sonnet-4")
    assert repaired.attempts[-1].verdict.reason

    escalated = seen["escalate"]
    assert escalated.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    kinds = [(a.role, a.verdict.kind) for a in escalated.attempts]
    assert kinds[:4] == [
        (pb.ATTEMPT_ROLE_DRAFT, pb.Verdict.KIND_UNSPECIFIED),
        (pb.ATTEMPT_ROLE_VALIDATE, pb.Verdict.KIND_REJECT),
        (pb.ATTEMPT_ROLE_DRAFT, pb.Verdict.KIND_UNSPECIFIED),
        (pb.ATTEMPT_ROLE_VALIDATE, pb.Verdict.KIND_REJECT),
    ]
    assert escalated.attempts[-1].model == "claude-sonnet-4"
    assert "simulated answer by claude-sonnet-4" in escalated.output.content


async def test_fail_fast_coding_gates_on_free_token_confidence(live) -> None:
    _, _, stub = await live()
    responses = await complete_all(stub, [ask(f"Binary search, variant {i}", task="coding") for i in range(16)])
    ladders = set()
    for resp in responses:
        check_costs(resp)
        assert resp.explanation.strategy == "fail-fast"
        models = [a.model for a in resp.attempts if a.role != pb.ATTEMPT_ROLE_VALIDATE]
        ladders.add(tuple(models))
        gates = [a for a in resp.attempts if a.role == pb.ATTEMPT_ROLE_VALIDATE]
        assert all(g.verdict.validator == "logprob-confidence" and g.cost_usd == 0 for g in gates)
        if resp.status == pb.OUTCOME_STATUS_ACCEPTED:
            assert gates[-1].verdict.kind == pb.Verdict.KIND_ACCEPT
        else:
            assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
            assert models[-1] == "claude-sonnet-4" and resp.attempts[-1].role == pb.ATTEMPT_ROLE_ESCALATE
    assert ("qwen3-coder-480b-a35b",) in ladders, "the cheapest coder passes its gate for most prompts"
    assert any(len(ladder) > 1 for ladder in ladders), "a failed gate moves up the ladder"


async def test_fail_fast_agentic_checks_tool_calls_against_their_schema(live) -> None:
    _, _, stub = await live()
    requests = [ask(f"Weather in city {i}?", task="agentic", tools=[WEATHER]) for i in range(16)]
    rejected_calls = 0
    for resp in await complete_all(stub, requests):
        check_costs(resp)
        gates = [a for a in resp.attempts if a.role == pb.ATTEMPT_ROLE_VALIDATE]
        assert all(g.verdict.validator == "json-schema" for g in gates)
        rejected_calls += sum(g.verdict.kind == pb.Verdict.KIND_REJECT for g in gates)
        if resp.status == pb.OUTCOME_STATUS_ACCEPTED:
            (call,) = resp.output.tool_calls
            assert call.name == "get_weather" and "city" in json.loads(call.arguments_json)
        else:
            assert resp.status == pb.OUTCOME_STATUS_REJECTED
    assert rejected_calls > 0, "some simulated tool calls miss the required argument and are caught"


async def test_thinking_escalation_and_critical_stakes_raise_effort(live) -> None:
    _, _, stub = await live()
    high = await complete_all(stub, [ask(f"Migrate the database, plan {i}", stakes=pb.STAKES_HIGH) for i in range(12)])
    efforts = set()
    for resp in high:
        check_costs(resp)
        assert resp.explanation.strategy == "thinking-escalation"
        answers = [a for a in resp.attempts if a.role != pb.ATTEMPT_ROLE_VALIDATE]
        assert answers[0].effort == pb.EFFORT_LOW, "high stakes start at low effort"
        assert all(a.model == "glm-4.5" for a in answers)
        for before, after in itertools.pairwise(answers):
            assert after.effort == before.effort + 1
        efforts.update(a.effort for a in answers)
    assert pb.EFFORT_MEDIUM in efforts, "a failed gate raised the effort for some prompt"

    (critical,) = await complete_all(stub, [ask("Approve this wire transfer", stakes=pb.STAKES_CRITICAL)])
    check_costs(critical)
    assert critical.explanation.strategy == "draft-validate"
    assert critical.attempts[0].effort == pb.EFFORT_LOW
    assert critical.attempts[1].model == "claude-opus-4.1" and critical.attempts[1].verdict.validator == "llm-judge"


async def test_stream_of_a_gated_plan_reports_the_verdict_then_the_answer(live) -> None:
    _, _, stub = await live()
    events = [e async for e in stub.StreamComplete(ask("A short poem, take 0", task="creative"), timeout=30)]
    attempts = [e.attempt for e in events if e.WhichOneof("event") == "attempt"]
    deltas = [e.delta for e in events if e.WhichOneof("event") == "delta"]
    final = events[-1].final
    assert any(a.role == pb.ATTEMPT_ROLE_VALIDATE and a.verdict.kind != pb.Verdict.KIND_UNSPECIFIED for a in attempts)
    assert "".join(deltas) == final.output.content, "a gated draft is sent only once it passed"
