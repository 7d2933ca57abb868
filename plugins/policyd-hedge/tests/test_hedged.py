"""The ``hedged`` strategy and the ``word-limit`` validator, in process, through the real hooks."""

from __future__ import annotations

import time

import policyd_hedge
import pytest
from policyd_hedge import hedged, word_limit
from policyd_hedge.hedged import HedgedParams, hedge_delay_s
from policyd_hedge.latency import LATENCIES

from policyd.api import ConfigError, Constraints, OutcomeStatus, VerdictKind
from policyd.testing import make_request

STRATEGY = hedged.SPEC.name
VALIDATOR = word_limit.SPEC.name


@pytest.fixture
def hedge(policyd_register):
    policyd_register(policyd_hedge, "hedge", version=policyd_hedge.__version__)


def plan(**params: object) -> dict:
    merged = {"primary": "glm-4.5", "backup": "gpt-oss-120b", "delay_ms": 100, **params}
    return {"policies": {"default": {"rules": [{"name": "hedged", "plan": {"strategy": STRATEGY, "params": merged}}]}}}


async def test_a_prompt_primary_answers_alone(hedge, policyd_engine):
    h = policyd_engine(plan(), script={"glm-4.5": "quick", "gpt-oss-120b": "backup"})
    outcome = await h.complete("hi")
    assert outcome.status is OutcomeStatus.ACCEPTED_UNVALIDATED
    assert outcome.output is not None and outcome.output.content == "quick"
    assert h.provider.models_called() == ["glm-4.5"], "no hedge before the delay"


async def test_a_slow_primary_is_hedged_the_backup_wins_and_the_primary_is_cancelled(hedge, policyd_engine):
    script = {"glm-4.5": [{"text": "slow", "delay_ms": 5000}], "gpt-oss-120b": "fast"}
    h = policyd_engine(plan(), script=script)
    started = time.monotonic()
    outcome = await h.complete("hi")
    assert time.monotonic() - started < 2, "the backup's answer is returned without waiting for the primary"
    assert outcome.output is not None and outcome.output.content == "fast"
    assert [c.model.id for c in h.provider.cancelled] == ["glm-4.5"]
    primary, backup = sorted(outcome.attempts, key=lambda a: a.model != "glm-4.5")
    assert primary.error.startswith("cancelled after") and primary.usage_estimated
    glm = h.config.catalog["glm-4.5"]
    assert primary.cost_usd > 0 and primary.cost_usd == pytest.approx(glm.cost_usd(primary.input_tokens, 0))
    assert backup.error == "" and backup.cost_usd > 0
    assert outcome.total_cost_usd == pytest.approx(primary.cost_usd + backup.cost_usd)


async def test_a_primary_that_fails_early_is_hedged_at_once(hedge, policyd_engine):
    h = policyd_engine(plan(delay_ms=5000), script={"glm-4.5": [{"error": "overloaded"}], "gpt-oss-120b": "fine"})
    started = time.monotonic()
    outcome = await h.complete("hi")
    assert time.monotonic() - started < 2, "not after the 5 s delay"
    assert outcome.output is not None and outcome.output.content == "fine"
    assert next(a.error for a in outcome.attempts).endswith("overloaded")


async def test_the_gate_decides_what_a_good_answer_is(hedge, policyd_engine):
    gate = {"name": VALIDATOR, "params": {"max_words": 3}}
    script = {"glm-4.5": "far too many words for this gate", "gpt-oss-120b": [{"text": "short answer", "delay_ms": 20}]}
    h = policyd_engine(plan(gate=gate), script=script)
    outcome = await h.complete("hi")
    assert outcome.status is OutcomeStatus.ACCEPTED
    assert outcome.output is not None and outcome.output.content == "short answer"
    verdicts = [a.verdict.kind for a in outcome.attempts if a.verdict]
    assert verdicts == [VerdictKind.REJECT, VerdictKind.ACCEPT]


async def test_no_good_answer_is_rejected_with_the_last_answer(hedge, policyd_engine):
    gate = {"name": VALIDATOR, "params": {"max_words": 1}}
    h = policyd_engine(plan(gate=gate), script={"glm-4.5": "two words", "gpt-oss-120b": "three words here"})
    outcome = await h.complete("hi")
    assert outcome.status is OutcomeStatus.REJECTED


async def test_a_backup_the_budget_cannot_pay_for_is_not_started(hedge, policyd_engine):
    script = {"glm-4.5": [{"text": "eventually", "delay_ms": 300}], "claude-opus-4.1": "pricey"}
    h = policyd_engine(plan(backup="claude-opus-4.1", delay_ms=20), script=script)
    primary, backup = h.engine.explain(make_request("hi")).steps
    budget = primary.estimated_cost_usd * 1.5
    assert budget < backup.estimated_cost_usd
    outcome = await h.complete("hi", constraints=Constraints(max_cost_usd=budget))
    assert outcome.output is not None and outcome.output.content == "eventually"
    assert h.provider.models_called() == ["glm-4.5"]


def test_the_delay_is_the_primarys_p90_once_enough_latencies_are_seen():
    params = HedgedParams(primary="glm-4.5", backup="gpt-oss-120b", initial_delay_ms=700, min_samples=10)
    assert hedge_delay_s(params) == pytest.approx(0.7), "initial delay before enough observations"
    for ms in range(100, 1100, 100):  # 100 … 1000 ms
        LATENCIES.observe("glm-4.5", ms)
    assert hedge_delay_s(params) == pytest.approx(0.9)
    assert hedge_delay_s(params.model_copy(update={"delay_ms": 250})) == pytest.approx(0.25), "a fixed delay wins"


async def test_successful_calls_feed_the_latency_window(hedge, policyd_engine):
    h = policyd_engine(plan(), script={"glm-4.5": [{"text": "ok", "delay_ms": 30}]})
    await h.complete("hi")
    assert LATENCIES.count("glm-4.5") == 1 and LATENCIES.quantile_ms("glm-4.5", 0.9) >= 30


def test_explain_shows_both_calls_and_the_cost_range(hedge, policyd_engine):
    h = policyd_engine(plan(), script={})
    explanation = h.engine.explain(make_request("hi"))
    assert explanation.strategy == STRATEGY
    assert [(s.role, s.model) for s in explanation.steps] == [("primary", "glm-4.5"), ("hedge", "gpt-oss-120b")]
    assert 0 < explanation.best_usd < explanation.worst_usd


def test_bad_parameters_name_the_key(hedge, policyd_engine):
    with pytest.raises(ConfigError, match=r"plan\.params: backup: must differ from primary"):
        policyd_engine(plan(backup="glm-4.5"))
    bad_gate = {"name": VALIDATOR, "params": {"max_words": 2, "min_words": 5}}
    with pytest.raises(ConfigError, match="min_words: 5 is more than max_words"):
        policyd_engine(plan(gate=bad_gate))


async def test_word_limit_can_repair_by_truncating(hedge, policyd_engine):
    gate = {"name": VALIDATOR, "params": {"max_words": 2, "truncate": True}}
    h = policyd_engine(plan(gate=gate), script={"glm-4.5": "one two three four"})
    outcome = await h.complete("hi")
    assert outcome.status is OutcomeStatus.ACCEPTED
    assert outcome.output is not None and outcome.output.content == "one two"
    assert outcome.attempts[-1].verdict is not None and outcome.attempts[-1].verdict.kind is VerdictKind.REPAIR
