from __future__ import annotations

import math

import pytest

from policyd.errors import InvalidArgument
from policyd.eval.gates import Observation, arithmetic_ok, candidate_thresholds, normalize_answer, parse_gate
from policyd.eval.metrics import apgr, cpt, curve, point
from policyd.eval.simulate import ItemResult


def test_arithmetic_gate_checks_calculator_annotations():
    assert arithmetic_ok("16 - 3 - 4 = <<16-3-4=9>>9 eggs, 9 * 2 = $<<9*2=18>>18")
    assert not arithmetic_ok("3 * 4 = <<3*4=13>>13")
    assert arithmetic_ok("no annotations at all")


def test_arithmetic_gate_never_evaluates_code():
    assert not arithmetic_ok("<<__import__('os').system('true')=0>>")
    assert not arithmetic_ok("<<2**100000=1>>")


def test_composite_gate_needs_every_part():
    gate = parse_gate("arithmetic+length").with_threshold(-20)
    assert gate.passes(Observation("<<1+1=2>> short"))
    assert not gate.passes(Observation("<<1+1=3>> short"))
    assert not gate.passes(Observation("<<1+1=2>> but this one rambles on for far too long"))


def test_logprob_gate_uses_mean_log_probability_and_fails_without_it():
    gate = parse_gate("logprob").with_threshold(-0.5)
    assert gate.passes(Observation("A", (-0.1, -0.3)))
    assert not gate.passes(Observation("A", (-0.1, -1.3)))
    assert not gate.passes(Observation("A", None))


def test_agreement_compares_final_answers():
    gate = parse_gate("agreement:other")
    assert gate.agree_with == "other"
    assert gate.passes(Observation("so #### 18"), Observation("#### 18."))
    assert not gate.passes(Observation("#### 18"), Observation("#### 19"))
    assert normalize_answer("  B ") == "b"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("logprob+length", "only one scored gate"),
        ("confidence", "unknown gate 'confidence'"),
        ("agreement", "agreement needs a model"),
        ("format:[", "format pattern"),
    ],
)
def test_bad_gate_specs_are_rejected(spec, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_gate(spec)


def test_candidate_thresholds_span_pass_all_to_pass_none():
    ts = candidate_thresholds([-3.0, -2.0, -1.0, -math.inf])
    assert ts[0] is None and ts[-1] == math.inf
    assert {-3.0, -2.0, -1.0} <= set(ts)


def _pt(share: float, acc: float):
    n = 100
    strong = round(share * n)
    res = [ItemResult(str(i), i < acc * n, 0.0, ("w", "s") if i < strong else ("w",)) for i in range(n)]
    return point("p", res, "s")


def test_random_router_curve_has_apgr_one_half_and_cpt50_one_half():
    weak, strong = _pt(0.0, 0.5), _pt(1.0, 0.9)
    pts = [_pt(s / 10, 0.5 + 0.4 * s / 10) for s in range(11)]
    pairs = curve(pts, weak, strong)
    assert math.isclose(apgr(pairs), 0.5, abs_tol=1e-9)
    assert math.isclose(cpt(pairs, 0.5), 0.5, abs_tol=1e-9)


def test_a_gate_that_recovers_the_gap_early_scores_higher():
    weak, strong = _pt(0.0, 0.5), _pt(1.0, 0.9)
    pairs = curve([_pt(0.2, 0.86), _pt(0.5, 0.9)], weak, strong)
    assert cpt(pairs, 0.5) < 0.2
    assert apgr(pairs) > 0.8
