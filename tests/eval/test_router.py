"""Router files: trained with scikit-learn, scored in pure Python, loaded without pickle, named by a policy."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from policyd.config import load_text
from policyd.errors import ConfigError, InvalidArgument
from policyd.eval.fit import Choice
from policyd.eval.gates import parse_gate
from policyd.eval.records import Dataset, Record, fit_prices
from policyd.eval.router import matrix, predict, router_of
from policyd.eval.routerfile import Vectorizer, from_json, load
from policyd.eval.runner import Arm, RouteSpec, run_arms
from policyd.plugin.manager import default_host


def texts_and_labels(n: int = 200) -> tuple[list[str], list[int]]:
    texts, y = [], []
    for i in range(n):
        hard = i % 3 == 0
        texts.append(f"{'prove the theorem about' if hard else 'say hello to'} item {i}")
        y.append(int(hard))
    return texts, y


def test_the_router_learns_and_pure_python_scores_match_scikit_learn(tmp_path):
    vec = Vectorizer(n_features=1 << 12)
    texts, y = texts_and_labels()
    router = router_of(vec, texts, y, 0.5, {"note": "test"})
    assert router.score("prove the theorem about item 999") > 0.5 > router.score("say hello to item 999")
    # The file's pure-Python scorer computes exactly what scikit-learn's model computes on the same features.
    sk = predict("logistic", matrix(vec, texts), y, matrix(vec, texts[:20]))
    assert [router.score(t) for t in texts[:20]] == pytest.approx(sk, abs=1e-9)
    path = tmp_path / "r.json"
    router.save(path)
    doc = json.loads(path.read_text())  # plain JSON: nothing is unpickled
    assert doc["format"] == "policyd-router" and doc["version"] == 1
    again = load(path)
    assert again.threshold == 0.5 and again.meta == {"note": "test"}
    assert all(again.score(t) == router.score(t) for t in texts[:50])


def test_hashing_is_deterministic_across_processes():
    # BLAKE2b, not Python's salted hash(): a fixed token always lands in the same bucket with the same sign.
    vec = Vectorizer(n_features=1 << 18)
    assert vec.transform("hello world") == vec.transform("Hello, World!")
    row = vec.transform("hello")
    assert len(row) == 1 and math.isclose(abs(next(iter(row.values()))), 1.0)
    assert next(iter(row)) == 112295  # pinned: a change of hashing must bump the file version


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"version": 2}, ".version"),
        ({"format": "pickle"}, ".format"),
        ({"vectorizer": {"kind": "tfidf"}}, ".vectorizer.kind"),
        ({"model": {"kind": "logistic", "intercept": 0.0, "weights": {"99999999": 1.0}}}, ".model.weights"),
        ({"threshold": "high"}, ".threshold"),
    ],
)
def test_bad_router_files_name_the_key(tmp_path, change, where):
    vec = Vectorizer(n_features=1 << 10)
    texts, y = texts_and_labels(30)
    doc = {**router_of(vec, texts, y, 0.5, {}).to_json(), **change}
    with pytest.raises(InvalidArgument) as err:
        from_json(doc, "r.json")
    assert where in err.value.field


def route_config(router: str) -> str:
    return f"""
providers:
  simulated: {{kind: simulated, latency_scale: 0.0}}
policies:
  default:
    rules:
      - name: routed
        plan:
          strategy: route
          params:
            router: {router}
            strong: gpt-oss-120b
            rungs:
              - {{model: llama-3.1-8b, gate: {{name: regex, params: {{pattern: "\\\\S"}}}}}}
              - {{model: gpt-oss-120b, ungated: true}}
"""


def test_a_policy_naming_a_missing_or_broken_router_file_fails_to_load(tmp_path):
    registered = default_host(entry_points=False).collect()
    with pytest.raises(ConfigError) as err:
        load_text(route_config(str(tmp_path / "nope.json")), registered, "p.yaml")
    assert "router" in str(err.value) and "nope.json" in str(err.value)
    (tmp_path / "bad.json").write_text('{"format": "policyd-router", "version": 9}')
    with pytest.raises(ConfigError) as err:
        load_text(route_config(str(tmp_path / "bad.json")), registered, "p.yaml")
    assert "version" in str(err.value)


def small_dataset() -> Dataset:
    records = []
    texts, y = texts_and_labels(60)
    for i, (text, hard) in enumerate(zip(texts, y, strict=True)):
        for model, right, cost in (("cheap", not hard, 1e-6), ("strong", True, 3e-5)):
            records.append(
                Record("d", "", str(i), model, f"#### {i}", right, cost, prompt=text, tokens_in=10, tokens_out=5)
            )
    return Dataset("d", records, fit_prices(records, "test"), ladder=("cheap", "strong"), gate="format")


@pytest.mark.parametrize("cut", [0.5, 0.0, 2.0])
def test_the_route_strategy_sends_high_scores_straight_to_the_strong_model(tmp_path, cut):
    ds = small_dataset()
    texts, y = texts_and_labels(60)
    path = tmp_path / "r.json"
    router_of(Vectorizer(n_features=1 << 12), texts, y, 0.5, {}).save(path)
    spec = RouteSpec(path, cut, "strong", Choice(("cheap", "strong"), parse_gate("format:^#### [0-9]*[05]$")))
    items = tuple(ds.items())
    [run] = asyncio.run(run_arms(ds, [Arm("route", ((items, spec),))], progress=False))
    assert run.strategy == "route" and run.mismatches == []
    direct = [r for r in run.results if r.models == ("strong",)]
    if cut == 0.0:
        assert len(direct) == len(items)  # every score reaches 0: no cheap call at all
    elif cut > 1:
        assert not direct  # never routes: the cascade alone
    else:
        assert {int(r.item) % 3 for r in direct} == {0}  # the hard items skip the cheap call
        assert all(r.correct for r in run.results)


def test_the_learned_gate_needs_a_router_file_with_a_post_model(tmp_path):
    vec = Vectorizer(n_features=1 << 10)
    texts, y = texts_and_labels(30)
    router_of(vec, texts, y, 0.5, {}).save(tmp_path / "pre-only.json")
    text = route_config(str(tmp_path / "pre-only.json")).replace(
        '{name: regex, params: {pattern: "\\\\S"}}',
        f"{{name: learned-gate, params: {{router: {tmp_path}/pre-only.json}}}}",
    )
    assert "learned-gate" in text
    with pytest.raises(ConfigError) as err:
        load_text(text, default_host(entry_points=False).collect(), "p.yaml")
    assert "no post-generation model" in str(err.value)
