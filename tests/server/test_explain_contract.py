"""Explain through the live daemon: each step says why it is there, and the cost range adds up."""

from __future__ import annotations

import pytest

from policyd.v1 import policyd_pb2 as pb


def ask(**kw: object) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="Write a binary search")], **kw)


async def test_the_best_case_is_the_first_step_and_its_gate_at_their_cheapest(live):
    _, _, stub = await live()  # the bundled default: high stakes climb thinking effort, gated by a judge
    e = (await stub.Explain(ask(task="coding", stakes=pb.STAKES_HIGH))).explanation

    first, gate = e.steps[0], e.steps[1]
    assert gate.role == "validate" and gate.validator
    assert gate.best_cost_usd < gate.estimated_cost_usd, "a bare accept costs less than a repair"
    assert first.best_cost_usd == first.estimated_cost_usd
    assert e.estimated_cost.best_usd == pytest.approx(first.best_cost_usd + gate.best_cost_usd)
    assert e.estimated_cost.worst_usd == pytest.approx(sum(s.estimated_cost_usd for s in e.steps))
    assert all(s.reason for s in e.steps), [(s.role, s.reason) for s in e.steps]
    assert first.reason.startswith("effort ") and gate.reason.startswith("gate: ")


async def test_a_step_the_constraints_exclude_is_shown_skipped_and_costs_nothing(live):
    _, _, stub = await live()
    allowed = pb.Constraints(denied_models=["qwen3-coder-480b-a35b"])
    e = (await stub.Explain(ask(task="coding", constraints=allowed))).explanation

    [skipped] = [s for s in e.steps if s.model == "qwen3-coder-480b-a35b"]
    assert skipped.reason == "skipped: excluded by constraints.denied_models"
    assert skipped.estimated_cost_usd == 0
    running = [s for s in e.steps if not s.reason.startswith("skipped")]
    assert e.estimated_cost.worst_usd == pytest.approx(sum(s.estimated_cost_usd for s in running))
    assert e.estimated_cost.best_usd == pytest.approx(
        running[0].best_cost_usd
        + (running[1].best_cost_usd if len(running) > 1 and running[1].role == "validate" else 0)
    )


async def test_explain_warns_when_the_cost_cap_is_below_the_worst_case(live):
    _, _, stub = await live()
    e = (
        await stub.Explain(ask(task="coding", stakes=pb.STAKES_HIGH, constraints=pb.Constraints(max_cost_usd=0.001)))
    ).explanation
    assert any("above the request's cost cap ($0.001000)" in w for w in e.warnings), e.warnings
