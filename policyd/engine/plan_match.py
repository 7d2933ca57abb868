"""Policy matching: the first rule whose conditions hold and whose plan the constraints allow.

Matching is pure and explainable: the result says which rule matched and why, and
which earlier rules were skipped because the request's constraints excluded every
model they may use.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from policyd.config.model import Config, Plan, Policy, Rule
from policyd.config.schema import MatchConfig
from policyd.embedding import EMBED_STRATEGY
from policyd.errors import FailedPrecondition, NotFound
from policyd.types import Constraints, ModelSpec, Request


@dataclass(frozen=True)
class Match:
    policy: Policy
    rule: Rule
    reason: str
    skipped: tuple[str, ...] = ()

    @property
    def plan(self) -> Plan:
        return self.rule.plan


def model_allowed(model: ModelSpec, constraints: Constraints) -> str | None:
    """None when the constraints allow the model, else the constraint that excludes it."""
    if constraints.allowed_models and model.id not in constraints.allowed_models:
        return "constraints.allowed_models"
    if model.id in constraints.denied_models:
        return "constraints.denied_models"
    if constraints.allowed_licenses and model.license not in constraints.allowed_licenses:
        return "constraints.allowed_licenses"
    if constraints.local_only and not model.local:
        return "constraints.local_only"
    return None


def _conditions(match: MatchConfig, request: Request) -> list[str] | None:
    """The conditions that held, or None when one fails."""
    held: list[str] = []
    if match.tasks:
        if request.task not in match.tasks:
            return None
        held.append(f"task={request.task!r} in {match.tasks}")
    if match.stakes:
        if request.stakes not in match.stakes:
            return None
        held.append(f"stakes={request.stakes.value} in {[s.value for s in match.stakes]}")
    for key, value in match.labels.items():
        if request.labels.get(key) != value:
            return None
        held.append(f"label {key}={value!r}")
    if match.tenants:
        if request.tenant not in match.tenants:
            return None
        held.append(f"tenant={request.tenant!r}")
    return held


def select_policy(config: Config, request: Request) -> Policy:
    name = request.policy or config.defaults.policy
    policy = config.policies.get(name)
    if policy is None:
        raise NotFound(
            f"policy {name!r} is not defined (known: {', '.join(sorted(config.policies))})",
            reason="POLICY_NOT_FOUND",
            metadata={"policy": name},
        )
    return policy


def match_request(config: Config, request: Request, *, embedding: bool = False) -> Match:
    """The first rule of the request's policy that holds; ``embedding`` requests see only ``embed`` plans."""
    policy = select_policy(config, request)
    skipped: list[str] = []
    for rule in policy.rules:
        if (rule.plan.strategy == EMBED_STRATEGY) is not embedding:
            continue
        held = _conditions(rule.match, request)
        if held is None:
            continue
        models = [config.catalog[m] for m in rule.plan.models]
        exclusions = [model_allowed(m, request.constraints) for m in models]
        if models and all(exclusions):
            skipped.append(f"rule {rule.name!r} skipped: {exclusions[0]} excludes all its models")
            continue
        reason = f"rule {rule.name!r} matched: " + (", ".join(held) if held else "no conditions (catch-all)")
        return Match(policy=policy, rule=rule, reason=reason, skipped=tuple(skipped))
    detail = f"; {'; '.join(skipped)}" if skipped else ""
    if embedding:
        raise FailedPrecondition(
            f"policy {policy.name!r}: no embedding rule (plan strategy {EMBED_STRATEGY!r}) matches"
            f" task={request.task!r}{detail}"
        )
    raise FailedPrecondition(
        f"policy {policy.name!r}: no rule matches task={request.task!r} stakes={request.stakes.value}{detail}",
        reason="NO_MATCHING_RULE",
        metadata={"policy": policy.name, "task": request.task, "stakes": request.stakes.value},
    )


MEMO_ENTRIES = 4096
"""Matches remembered per config; the memo starts afresh when it is full."""


class MatchMemo:
    """The matches decided on one config, by the request attributes that matching reads.

    A match depends on the config and on the request's policy, task, stakes, tenant,
    constraints and the labels the policy's rules name, nothing else (not the messages):
    requests alike in those get the same :class:`Match`. The memo belongs to one config
    (the engine's ``Runtime``), so a reload starts a new one.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._matches: dict[Hashable, Match] = {}
        self._label_keys: dict[str, tuple[str, ...]] = {}
        """Per policy: the label keys its rules match on."""

    def __len__(self) -> int:
        return len(self._matches)

    def key(self, request: Request, embedding: bool = False) -> Hashable | None:
        """What matching reads of ``request``; None when the policy is unknown (no memo: the error is raised)."""
        name = request.policy or self.config.defaults.policy
        keys = self._label_keys.get(name)
        if keys is None:
            policy = self.config.policies.get(name)
            if policy is None:
                return None
            keys = self._label_keys[name] = tuple(sorted({k for rule in policy.rules for k in rule.match.labels}))
        labels = request.labels
        seen = tuple(labels.get(k) for k in keys) if keys else ()
        return (name, request.task, request.stakes, request.tenant, seen, request.constraints, embedding)

    def match(self, request: Request, decide: Callable[[Config, Request], Match]) -> Match:
        """The remembered match for requests like ``request``, else ``decide(config, request)``, remembered."""
        key = self.key(request)
        if key is None:
            return decide(self.config, request)
        try:
            found = self._matches.get(key)
        except TypeError:  # an unhashable field (constraints built from lists by a plugin): not remembered
            return decide(self.config, request)
        if found is None:
            found = decide(self.config, request)
            if len(self._matches) >= MEMO_ENTRIES:
                self._matches.clear()
            self._matches[key] = found
        return found
