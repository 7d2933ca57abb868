"""An explanation reaches the wire the same however often it is answered (its bytes are reused)."""

from __future__ import annotations

from policyd.server import convert
from policyd.types import Effort, Explanation, Message, Outcome, OutcomeStatus, PlanStep, Role
from policyd.v1 import policyd_pb2 as pb


def explanation(**changes: object) -> Explanation:
    fields: dict[str, object] = {
        "policy": "default",
        "rule": "bench",
        "strategy": "single",
        "reason": "rule 'bench' matched",
        "models": ("m-1",),
        "steps": (PlanStep(role="answer", model="m-1", effort=Effort.LOW, estimated_cost_usd=1e-5, reason="only"),),
        "best_usd": 1e-5,
        "worst_usd": 2e-5,
        "warnings": ("a note",),
        "policy_version": "v7",
    }
    return Explanation(**{**fields, **changes})  # type: ignore[arg-type]


def by_hand(e: Explanation) -> pb.Explanation:
    out = pb.Explanation()
    convert._set_explanation(out, e)
    return out


def test_a_reused_explanation_answers_the_same_message_every_time():
    for e in (explanation(), explanation(best_usd=0.0, worst_usd=0.0, steps=(), models=(), warnings=())):
        outcome = Outcome(
            request_id="r",
            status=OutcomeStatus.ACCEPTED,
            output=Message(role=Role.ASSISTANT, content="x"),
            attempts=(),
            explanation=e,
        )
        answers = [convert.outcome_to_proto(outcome) for _ in range(4)]  # made, kept, then parsed twice
        assert all(a == answers[0] for a in answers)
        assert all(a.explanation == by_hand(e) for a in answers)
        assert all(a.explanation.HasField("estimated_cost") for a in answers)  # set even when zero
        assert [convert.explanation_to_proto(e) for _ in range(3)] == [by_hand(e)] * 3


def test_an_equal_but_new_explanation_is_converted_from_its_own_fields():
    first = explanation()
    convert.explanation_to_proto(first)
    convert.explanation_to_proto(first)  # now kept as bytes
    other = explanation(rule="another", warnings=())
    assert convert.explanation_to_proto(other) == by_hand(other)
    assert convert.explanation_to_proto(other).rule == "another"
