"""The ledger's rows hold what the stats read: the ``models`` column is the JSON list of the models called."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from policyd.ledger import records
from policyd.ledger.records import ATTEMPT_COLUMNS, OUTCOME_COLUMNS, attempt_values, finished, outcome_values
from policyd.types import (
    Attempt,
    AttemptRole,
    Effort,
    Explanation,
    Message,
    Outcome,
    OutcomeStatus,
    Request,
    Role,
    Verdict,
    VerdictKind,
)


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


one_attempt = st.builds(
    Attempt,
    index=st.integers(0, 3),
    role=st.sampled_from(AttemptRole),
    model=st.sampled_from(["", "m", 'q"uote']),
    provider=st.just("p"),
    effort=st.sampled_from(Effort),
    input_tokens=st.integers(0, 50),
    output_tokens=st.integers(0, 50),
    cached=st.booleans(),
    error=st.sampled_from(["", "timeout"]),
    verdict=st.none() | st.builds(Verdict, kind=st.sampled_from(VerdictKind), reason=st.just("r")),
)


@given(one_attempt)
def test_a_one_attempt_outcome_gets_the_row_the_general_sums_make(attempt: Attempt):
    assert records._one_attempt(attempt) == records._summed((attempt,))


@given(one_attempt)
def test_attempt_rows_hold_the_enum_values_as_plain_strings(attempt: Attempt):
    outcome = Outcome(
        request_id="r",
        status=OutcomeStatus.REJECTED,
        output=None,
        attempts=(attempt,),
        explanation=Explanation(policy="p", rule="r", strategy="single", reason=""),
    )
    row = dict(zip(ATTEMPT_COLUMNS[1:], attempt_values(outcome)[0], strict=True))
    kind = attempt.verdict.kind.value if attempt.verdict else ""
    assert (row["role"], row["effort"], row["verdict"]) == (attempt.role.value, attempt.effort.value, kind)
    assert all(type(row[k]) is str for k in ("role", "effort", "verdict"))  # what marshal (the spool) can store
