"""Runs a policy over recorded items through the real engine, with the replay provider.

Each operating point becomes one policy of a generated config (models priced as the
dataset says, served by ``replay``; one policy per fold, each with its own fitted
threshold). Every item is one engine request labelled with its item id. The outcome's
attempts say which model answered; that model's record says whether it was right.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from policyd import __version__
from policyd.config import load_text
from policyd.engine import Engine
from policyd.eval.gates import Gate
from policyd.eval.ladder import STRATEGY, EvalLadderPlugin
from policyd.eval.records import ITEM_LABEL, Dataset
from policyd.eval.simulate import ItemResult, run_ladder
from policyd.eval.sources import remember
from policyd.plugin.manager import default_host
from policyd.types import AttemptRole, Message, Outcome, Request, Role

ANSWERING = (AttemptRole.ANSWER, AttemptRole.ESCALATE, AttemptRole.DRAFT)


@dataclass(frozen=True)
class Arm:
    """One operating point: a ladder and gate, with the threshold each group of items gets."""

    label: str
    ladder: tuple[str, ...]
    gate: Gate
    groups: tuple[tuple[tuple[str, ...], float | None], ...]
    """(items, threshold) pairs: one per fold."""


def validator_gate(gate: Gate, threshold: float | None) -> dict[str, Any] | None:
    """The gate as one of policyd's own validators, when one expresses it exactly."""
    if gate.scored == "logprob" and not gate.checks and (threshold is None or math.isfinite(threshold)):
        floor = -1e300 if threshold is None else min(0.0, threshold)
        return {"name": "logprob-confidence", "params": {"min_mean_logprob": floor}}
    if gate.scored is None and gate.checks == ("format",):
        return {"name": "regex", "params": {"pattern": gate.pattern}}
    return None


def plan_for(
    ladder: Sequence[str], gate: Gate, threshold: float | None, strategies: Collection[str]
) -> tuple[str, dict[str, Any]]:
    """``fail-fast`` with a policyd validator as every rung's gate where one fits, else ``eval-ladder``."""
    ref = validator_gate(gate, threshold)
    if ref is not None and "fail-fast" in strategies:
        rungs: list[dict[str, Any]] = [{"model": m} for m in ladder[:-1]]
        rungs.append({"model": ladder[-1], "ungated": True})
        return "fail-fast", {"rungs": rungs, "gate": ref}
    params: dict[str, Any] = {"models": list(ladder), "gate": gate.spec}
    if threshold is not None:
        params["threshold"] = threshold if math.isfinite(threshold) else 1e300
    return STRATEGY, params


def config_text(ds: Dataset, arms: Sequence[Arm], dataset_key: str, strategies: Collection[str] = ()) -> str:
    """The policy file the engine runs: every dataset model on ``replay``, one policy per (arm, fold)."""
    models = {
        model: {
            "provider": "replay",
            "upstream": model,
            "input_usd_per_mtok": price.input_usd_per_mtok,
            "output_usd_per_mtok": price.output_usd_per_mtok,
            "context_window": 1_000_000,
            "license": "recorded",
        }
        for model, price in ds.prices.items()
    }
    policies: dict[str, Any] = {}
    for a, arm in enumerate(arms):
        for g, (_, threshold) in enumerate(arm.groups):
            strategy, params = plan_for(arm.ladder, arm.gate, threshold, strategies)
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
        validator_calls=sum(a.role is AttemptRole.VALIDATE for a in outcome.attempts),
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
    prompts = {item: ds.prompt(item, arms[a].ladder[0]) for a, _, item in jobs}

    async def one(a: int, g: int, item: str) -> ItemResult:
        request = Request(
            request_id=f"{a}/{g}/{item}",
            messages=(Message(role=Role.USER, content=prompts[item] or f"item {item}"),),
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
    runs = [ArmRun(arm, plan_for(arm.ladder, arm.gate, arm.groups[0][1], strategies)[0], [], []) for arm in arms]
    for (a, g, item), res in zip(jobs, results, strict=True):
        run = runs[a]
        run.results.append(res)
        expected = run_ladder(ds, item, run.arm.ladder, run.arm.gate.with_threshold(run.arm.groups[g][1]))
        if not _same(res, expected):
            run.mismatches.append(item)
    return runs


def _same(got: ItemResult, want: ItemResult) -> bool:
    return (
        got.correct == want.correct
        and got.models == want.models
        and math.isclose(got.cost_usd, want.cost_usd, rel_tol=0.01, abs_tol=1e-7)
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
