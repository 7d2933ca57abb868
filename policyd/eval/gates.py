"""Gates: what decides whether a rung's answer is good enough to stop the ladder.

A gate reads an :class:`Observation` (the answer text and its token log-probabilities,
as the provider returned them) and passes or fails it. Fixed gates (format, arithmetic,
agreement) have no parameter; a *scored* gate (logprob, length) passes when its score
reaches a threshold, which ``policyd.eval.fit`` fits on the train split. Gates combine
with ``+`` (every part must pass; at most one part is scored): ``arithmetic+length``.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from policyd.errors import InvalidArgument


@dataclass(frozen=True)
class Observation:
    """A rung's answer as the gate sees it."""

    text: str
    logprobs: tuple[float, ...] | None = None


def normalize_answer(text: str) -> str:
    """For agreement: the final ``#### x`` answer if there is one, else the trimmed, lower-cased text."""
    final = re.findall(r"####\s*([^\n]+)", text)
    chosen = final[-1] if final else text
    return re.sub(r"[\s$,.]+$", "", chosen.strip()).strip().lower()


# ---------------------------------------------------------------- scores


def logprob_score(obs: Observation) -> float:
    """Mean token log-probability of the answer; no log-probabilities is the lowest confidence."""
    if not obs.logprobs:
        return -math.inf
    return sum(obs.logprobs) / len(obs.logprobs)


def length_score(obs: Observation) -> float:
    """Minus the answer's length in characters: long rambling answers are the wrong ones more often."""
    return -float(len(obs.text))


_OPS: dict[type, Callable[..., float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _calc(node: ast.AST) -> float:
    """Evaluate + - * / // % ** on numbers only; anything else raises ValueError (never ``eval``)."""
    if isinstance(node, ast.Expression):
        return _calc(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        right = _calc(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")
        return _OPS[type(node.op)](_calc(node.left), right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_calc(node.operand))
    raise ValueError(f"unsupported expression {type(node).__name__}")


_ANNOTATION = re.compile(r"<<([^=<>]+)=([^<>]+)>>")


@functools.lru_cache(maxsize=65536)
def arithmetic_ok(text: str) -> bool:
    """Every ``<<expression=result>>`` calculator annotation in the answer checks out."""
    for match in _ANNOTATION.finditer(text):
        expr = match.group(1).replace(",", "").replace("^", "**").replace("x", "*").replace("$", "")
        try:
            claimed = float(match.group(2).replace(",", "").replace("$", "").strip())
            value = _calc(ast.parse(expr.strip(), mode="eval"))
        except (ValueError, SyntaxError, ZeroDivisionError, OverflowError, RecursionError):
            return False
        if not math.isclose(value, claimed, rel_tol=1e-4, abs_tol=1e-6):
            return False
    return True


# ---------------------------------------------------------------- gates


Score = Callable[[Observation], float]
SCORED: dict[str, Score] = {"logprob": logprob_score, "length": length_score}
FIXED = ("format", "arithmetic", "agreement")
DEFAULT_FORMAT = r"\S"
"""The ``format`` gate's default pattern: any non-blank answer."""


@dataclass(frozen=True)
class Gate:
    """A parsed gate spec: fixed checks, at most one scored part and its threshold."""

    spec: str
    checks: tuple[str, ...] = ()
    scored: str | None = None
    threshold: float | None = None
    pattern: str = DEFAULT_FORMAT
    agree_with: str | None = None
    """For ``agreement:MODEL``: the model whose answer must match."""

    @property
    def is_none(self) -> bool:
        return not self.checks and self.scored is None

    def with_threshold(self, threshold: float | None) -> Gate:
        return replace(self, threshold=threshold)

    def score(self, obs: Observation) -> float:
        return SCORED[self.scored](obs) if self.scored else 0.0

    def fixed_pass(self, obs: Observation, agreeing: Observation | None = None) -> bool:
        """The fixed checks; ``agreeing`` is the agreement model's answer when the gate has one."""
        for check in self.checks:
            if check == "format" and not re.search(self.pattern, obs.text):
                return False
            if check == "arithmetic" and not arithmetic_ok(obs.text):
                return False
            if check == "agreement" and (
                agreeing is None or normalize_answer(agreeing.text) != normalize_answer(obs.text)
            ):
                return False
        return True

    def passes(self, obs: Observation, agreeing: Observation | None = None) -> bool:
        if self.is_none:
            return False
        if not self.fixed_pass(obs, agreeing):
            return False
        if self.scored is None:
            return True
        return self.threshold is None or self.score(obs) >= self.threshold


def parse_gate(spec: str, *, field_name: str = "--gate") -> Gate:
    """``logprob``, ``length``, ``format[:REGEX]``, ``arithmetic``, ``agreement:MODEL``, ``none``, joined by ``+``."""
    if spec.strip() in ("", "none"):
        return Gate(spec="none")
    checks: list[str] = []
    scored: str | None = None
    pattern = DEFAULT_FORMAT
    agree_with: str | None = None
    for part in spec.split("+"):
        name, _, arg = part.strip().partition(":")
        if name in SCORED:
            if scored is not None:
                raise InvalidArgument(field_name, f"{spec!r}: only one scored gate (logprob, length) at a time")
            scored = name
        elif name == "format":
            pattern = arg or DEFAULT_FORMAT
            try:
                re.compile(pattern)
            except re.error as exc:
                raise InvalidArgument(field_name, f"format pattern {pattern!r}: {exc}") from None
            checks.append(name)
        elif name == "agreement":
            if not arg:
                raise InvalidArgument(field_name, "agreement needs a model: agreement:MODEL")
            agree_with = arg
            checks.append(name)
        elif name == "arithmetic":
            checks.append(name)
        else:
            known = ", ".join([*SCORED, *FIXED, "none"])
            raise InvalidArgument(field_name, f"unknown gate {name!r} in {spec!r} (known: {known})")
    return Gate(spec=spec, checks=tuple(checks), scored=scored, pattern=pattern, agree_with=agree_with)


def candidate_thresholds(scores: Sequence[float], n: int = 60) -> list[float | None]:
    """Thresholds worth trying: ``None`` (pass all) and quantiles of the observed scores, plus never-pass."""
    finite = sorted(s for s in scores if math.isfinite(s))
    if not finite:
        return [None, math.inf]
    picks = {finite[min(len(finite) - 1, round(q * (len(finite) - 1) / n))] for q in range(n + 1)}
    return [None, *sorted(picks), math.inf]


AUTO_CANDIDATES = ("logprob", "length", "arithmetic+logprob", "arithmetic+length", "format")
"""What ``--gate auto`` chooses among (by cross-validation on train), where the data supports them."""


def reads_answer(gate: Gate) -> bool:
    return bool(gate.checks) or gate.scored == "length"


def check_applicable(gate: Gate, *, has_logprobs: bool, has_answers: bool, where: str = "--gate") -> None:
    """A gate must read something the data records: no silent accept of a gate the data cannot feed."""
    if gate.scored == "logprob" and not has_logprobs:
        raise InvalidArgument(where, f"{gate.spec!r}: the data records no log-probabilities for the gated models")
    if reads_answer(gate) and not has_answers:
        raise InvalidArgument(where, f"{gate.spec!r}: the data records no answer text (only correctness)")


def auto_gates(*, has_logprobs: bool, has_answers: bool, has_annotations: bool) -> list[Gate]:
    """The candidates of ``auto`` that the data can feed (empty: no post-generation signal at all)."""
    out = []
    for spec in AUTO_CANDIDATES:
        gate = parse_gate(spec)
        if "arithmetic" in gate.checks and not has_annotations:
            continue
        try:
            check_applicable(gate, has_logprobs=has_logprobs, has_answers=has_answers)
        except InvalidArgument:
            continue
        out.append(gate)
    return out
