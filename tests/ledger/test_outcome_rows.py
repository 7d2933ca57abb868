"""The ledger's rows hold what the stats read: the ``models`` column is the JSON list of the models called."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from policyd.ledger.records import OUTCOME_COLUMNS, finished, outcome_values
from policyd.types import Attempt, AttemptRole, Effort, Explanation, Message, Outcome, OutcomeStatus, Request, Role


def row_for(models: list[str]) -> dict[str, object]:
    attempts = tuple(
        Attempt(index=k, role=AttemptRole.ANSWER, model=m, provider="p", effort=Effort.OFF)
        for k, m in enumerate(models)
    )
    outcome = Outcome(
        request_id="r",
        status=OutcomeStatus.ACCEPTED,
        output=Message(role=Role.ASSISTANT, content="x"),
        attempts=attempts,
        explanation=Explanation(policy="p", rule="r", strategy="single", reason=""),
    )
    request = Request(request_id="r", messages=(Message(role=Role.USER, content="q"),))
    return dict(zip(OUTCOME_COLUMNS, (1, *outcome_values(finished(request, outcome, now=1.0))), strict=True))


@given(st.lists(st.text(max_size=12), max_size=3))
def test_the_models_column_is_the_json_of_the_models_called_in_order_each_once(models: list[str]):
    called = [m for m in dict.fromkeys(models) if m]  # an attempt without a model is not one called
    assert row_for(models)["models"] == json.dumps(called)


def test_model_ids_json_escapes_are_written_as_json_does():
    for model in ("gpt-4o-mini", 'say "hi"', "back\\slash", "café", "tab\there", "del\x7f", "ns/model:tag"):
        assert row_for([model])["models"] == json.dumps([model])
