"""Runs a policy over recorded items through the real engine, with the replay provider.

Each operating point becomes one policy of a generated config (models priced as the
dataset says, served by ``replay``; one policy per fold, each with its own fitted
threshold). Every item is one engine request labelled with its item id. The outcome's
attempts say which model answered; that model's record says whether it was right.
"""

from __future__ import annotations

import asyncio
import functools
import math
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from policyd import __version__
from policyd.config import load_text
from policyd.engine import Engine
from policyd.eval import routerfile
from policyd.eval.fit import Choice
from policyd.eval.gates import Gate
from policyd.eval.ladder import STRATEGY, VALIDATOR, EvalLadderPlugin
from policyd.eval.records import ITEM_LABEL, Dataset
from policyd.eval.simulate import ItemResult, observe, run_ladder, run_route
from policyd.eval.sources import remember
from policyd.plugin.manager import default_host
from policyd.types import AttemptRole, Message, Outcome, Request, Role

ANSWERING = (AttemptRole.ANSWER, AttemptRole.ESCALATE, AttemptRole.DRAFT)


@dataclass(frozen=True)
class RouteSpec:
    """A ``route`` operating point on one fold: the router file, its cut, and the cascade below it."""

    router: Path
    threshold: float
    strong: str
    choice: Choice
    """The cascade below the cut (a ladder of one: the cheap model alone answers)."""
    post_threshold: float | None = None
    """When set, the router file's learned gate (at this cut) judges the cheap answer instead of the choice's gate."""


Spec = Choice | RouteSpec


@dataclass(frozen=True)
class Arm:
    """One operating point: what each group of items (one per fold) is answered with."""

    label: str
    groups: tuple[tuple[tuple[str, ...], Spec], ...]

    def thresholds(self) -> tuple[float | None, ...]:
        return tuple(s.threshold for _, s in self.groups)


def validator_gate(gate: Gate, threshold: float | None) -> dict[str, Any] | None:
    """The gate as one of policyd's own validators, when one expresses it exactly."""
    if gate.scored == "logprob" and not gate.checks and (threshold is None or math.isfinite(threshold)):
        floor = -1e300 if threshold is None else min(0.0, threshold)
        return {"name": "logprob-confidence", "params": {"min_mean_logprob": floor}}
    if gate.scored is None and gate.checks == ("format",):
        return {"name": "regex", "params": {"pattern": gate.pattern}}
    return None


def gate_ref(gate: Gate) -> dict[str, Any]:
    """policyd's own validator where one fits, else the evaluator's ``eval-gate`` (never agreement)."""
    ref = validator_gate(gate, gate.threshold)
    if ref is not None:
        return ref
    params: dict[str, Any] = {"gate": gate.spec}
    if gate.threshold is not None:
        params["threshold"] = gate.threshold if math.isfinite(gate.threshold) else 1e300
    return {"name": VALIDATOR, "params": params}


def rungs_of(choice: Choice) -> list[dict[str, Any]]:
    rungs: list[dict[str, Any]] = [{"model": m, "gate": gate_ref(choice.gate)} for m in choice.ladder[:-1]]
    rungs.append({"model": choice.ladder[-1], "ungated": True})
    return rungs


def plan_for(spec: Spec, strategies: Collection[str]) -> tuple[str, dict[str, Any]]:
    """``route`` for a router; ``single`` for one model; ``fail-fast`` with a policyd validator as the gate
    where one fits, else ``eval-ladder``."""
    if isinstance(spec, RouteSpec):
        route = {"router": str(spec.router), "threshold": spec.threshold, "strong": spec.strong}
        rungs = rungs_of(spec.choice)
        if spec.post_threshold is not None:
            learned = {"name": "learned-gate", "params": {"router": str(spec.router), "threshold": spec.post_threshold}}
            rungs = [{**r, "gate": learned} if not r.get("ungated") else r for r in rungs]
        return "route", {**route, "rungs": rungs}
    ladder, gate = spec.ladder, spec.gate
    if len(ladder) == 1:
        return "single", {"model": ladder[0]}
    ref = validator_gate(gate, gate.threshold)
    if ref is not None and "fail-fast" in strategies:
        return "fail-fast", {"rungs": rungs_of(spec)}
    params: dict[str, Any] = {"models": list(ladder), "gate": gate.spec}
    if gate.threshold is not None:
        params["threshold"] = gate.threshold if math.isfinite(gate.threshold) else 1e300
    return STRATEGY, params


NANO = 0.001
"""USD per million tokens of every replayed model: one token is a nano-dollar, so the replay
provider's usage reproduces each recorded cost to 1e-9 USD (real prices would round tokens)."""


def config_text(ds: Dataset, arms: Sequence[Arm], dataset_key: str, strategies: Collection[str] = ()) -> str:
    """The policy file the engine runs: every dataset model on ``replay``, one policy per (arm, fold)."""
    models = {
        model: {
            "provider": "replay",
            "upstream": model,
            "input_usd_per_mtok": NANO,
            "output_usd_per_mtok": NANO,
            "context_window": 1 << 62,
            "license": "recorded",
        }
        for model in ds.prices
    }
    policies: dict[str, Any] = {}
    for a, arm in enumerate(arms):
        for g, (_, spec) in enumerate(arm.groups):
            strategy, params = plan_for(spec, strategies)
            plan = {"strategy": strategy, "params": params, "cache": {"enabled": False}}
            rules = [{"name": "all", "plan": plan}]
            policies[policy_name(a, g)] = {"description": f"{arm.label}, fold {g}", "rules": rules}
    doc = {
        "version": f"eval-{ds.name}",
        "defaults": {"policy": policy_name(0, 0), "deadline_ms": 600_000, "max_cost_usd": 1000.0},
        "providers": {"replay": {"kind": "replay", "dataset": dataset_key}},
        "catalogs": [],
        "models": models,
        "policies": policies,
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def policy_name(arm: int, group: int) -> str:
    return f"arm{arm}-fold{group}"


def build_engine(ds: Dataset, arms: Sequence[Arm]) -> Engine:
    host = default_host(entry_points=False)
    host.add(EvalLadderPlugin(), "policyd_eval", version=__version__, origin="direct")
    registered = host.collect()
    # The replay provider's factory finds the dataset already loaded in this process by its key.
    text = config_text(ds, arms, remember(ds), registered.strategies)
    config = load_text(text, registered, f"<eval {ds.name}>")
    return Engine(config, registered)


def request_text(ds: Dataset, item: str, model: str) -> str:
    """What an item's request says (its recorded prompt); routers score this text."""
    return ds.prompt(item, model) or f"item {item}"


def item_result(ds: Dataset, item: str, outcome: Outcome) -> ItemResult:
    answered = [a for a in outcome.attempts if a.role in ANSWERING]
    good = [a for a in answered if not a.error]
    correct = False
    if good and outcome.status.is_success and outcome.output is not None:
        rec = ds.get(item, good[-1].model)
        correct = rec.correct and outcome.output.content == rec.answer
    return ItemResult(
        item=item,
        correct=correct,
        cost_usd=outcome.total_cost_usd,
        models=tuple(a.model for a in answered),
        validator_calls=sum(a.role is AttemptRole.VALIDATE and bool(a.model) for a in outcome.attempts),
        called=tuple(a.model for a in outcome.attempts if a.model),
    )


@dataclass
class ArmRun:
    arm: Arm
    strategy: str
    """The strategy the engine ran this operating point on."""
    results: list[ItemResult]
    mismatches: list[str]
    """Items where the engine and the direct computation disagree (should be none)."""


async def run_arms(ds: Dataset, arms: Sequence[Arm], *, concurrency: int = 64, progress: bool = True) -> list[ArmRun]:
    engine = build_engine(ds, arms)
    jobs = [(a, g, item) for a, arm in enumerate(arms) for g, (items, _) in enumerate(arm.groups) for item in items]
    bar = _progress(len(jobs), f"eval {ds.name}", progress)
    gate = asyncio.Semaphore(concurrency)
    cheapest = {a: first_model(arm) for a, arm in enumerate(arms)}
    prompts = {item: request_text(ds, item, cheapest[a]) for a, _, item in jobs}

    async def one(a: int, g: int, item: str) -> ItemResult:
        request = Request(
            request_id=f"{a}/{g}/{item}",
            messages=(Message(role=Role.USER, content=prompts[item]),),
            labels={ITEM_LABEL: item},
            policy=policy_name(a, g),
        )
        async with gate:
            outcome = await engine.complete(request)
        bar.update(1)
        return item_result(ds, item, outcome)

    try:
        results = await asyncio.gather(*(one(a, g, item) for a, g, item in jobs))
    finally:
        bar.close()
        await engine.aclose()
    strategies = engine.registered.strategies
    runs = [ArmRun(arm, plan_for(arm.groups[0][1], strategies)[0], [], []) for arm in arms]
    for (a, g, item), res in zip(jobs, results, strict=True):
        run = runs[a]
        run.results.append(res)
        if not same(res, direct(ds, item, run.arm.groups[g][1], prompts[item])):
            run.mismatches.append(item)
    return runs


def first_model(arm: Arm) -> str:
    spec = arm.groups[0][1]
    return (spec.choice if isinstance(spec, RouteSpec) else spec).ladder[0]


def direct(ds: Dataset, item: str, spec: Spec, text: str) -> ItemResult:
    """The item computed from the records without the engine (what the engine must reproduce)."""
    if isinstance(spec, RouteSpec):
        router = _router(str(spec.router))
        score = router.score(text)
        if spec.post_threshold is not None and router.post is not None:
            if score >= spec.threshold:
                return run_ladder(ds, item, (spec.strong,), spec.choice.gate)
            rec = ds.get(item, spec.choice.ladder[0])
            post = router.post.score(router.vectorizer, text, rec.answer, observe(rec).logprobs)
            ladder = spec.choice.ladder if post >= spec.post_threshold else spec.choice.ladder[:1]
            return run_ladder(ds, item, ladder, spec.choice.gate)
        return run_route(ds, item, score, spec.threshold, spec.strong, spec.choice.ladder, spec.choice.gate)
    return run_ladder(ds, item, spec.ladder, spec.gate)


@functools.lru_cache(maxsize=64)
def _router(path: str) -> routerfile.Router:
    return routerfile.load(path)


def same(got: ItemResult, want: ItemResult) -> bool:
    """Same answer, same models in the same order, same cost (to the nano-dollar accounting unit)."""
    return (
        got.correct == want.correct
        and got.models == want.models
        and got.called == want.called
        and math.isclose(got.cost_usd, want.cost_usd, rel_tol=1e-6, abs_tol=2e-9)
    )


class _Bar:
    """tqdm when it is installed and stderr is a terminal; otherwise nothing."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self._bar: Any = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=desc, unit="req", leave=False)
            except ImportError:
                self._bar = None

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _progress(total: int, desc: str, enabled: bool) -> _Bar:
    return _Bar(total, desc, enabled)
