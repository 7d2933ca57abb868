"""The router file: a versioned JSON document a policy names, scored in pure Python (no numpy, no pickle).

A router scores a request *before any call* with the probability that the cheap model
fails where the strong one succeeds. Features are a signed hashing vectorizer over the
request's words and word pairs (plus ``task=``/``tenant=`` tokens when the file says so),
reimplemented here deterministically (BLAKE2b, not Python's salted ``hash``) so that
``policyd router train`` (scikit-learn) and the ``route`` strategy (this module) compute
the same vector. The model is a logistic regression: ``sigmoid(intercept + w . x)``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policyd.errors import InvalidArgument
from policyd.eval.gates import arithmetic_ok

FORMAT = "policyd-router"
VERSION = 1
INPUTS = ("prompt", "task", "tenant")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Vectorizer:
    """Words and word pairs of the lower-cased text, hashed into ``n_features`` signed buckets, L2-normalised."""

    n_features: int = 1 << 18
    ngrams: int = 2
    inputs: tuple[str, ...] = ("prompt",)

    def text(self, prompt: str, task: str = "", tenant: str = "") -> str:
        parts = {
            "prompt": prompt,
            "task": f"task={task}" if task else "",
            "tenant": f"tenant={tenant}" if tenant else "",
        }
        return " ".join(parts[i] for i in self.inputs if parts[i])

    def tokens(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        out = list(words)
        for n in range(2, self.ngrams + 1):
            out += [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
        return out

    def transform(self, text: str) -> dict[int, float]:
        """The sparse feature vector: bucket -> value."""
        return _transform(self, text)

    def _compute(self, text: str) -> dict[int, float]:
        vec: dict[int, float] = {}
        for tok in self.tokens(text):
            index, sign = _bucket(tok, self.n_features)
            vec[index] = vec.get(index, 0.0) + sign
        norm = math.sqrt(sum(v * v for v in vec.values()))
        return {i: v / norm for i, v in vec.items() if v} if norm else {}


DENSE = ("arithmetic_ok", "log_chars", "annotations", "final_marker", "logprob", "logprob_missing")
"""The post-generation model's named features of the cheap answer (besides hashed words)."""


def answer_features(answer: str, logprobs: tuple[float, ...] | None) -> dict[str, float]:
    """What a cascade knows after the cheap call: checks and confidence of the answer."""
    mean = sum(logprobs) / len(logprobs) if logprobs else 0.0
    return {
        "arithmetic_ok": float(arithmetic_ok(answer)),
        "log_chars": math.log1p(len(answer)),
        "annotations": math.log1p(answer.count("<<")),
        "final_marker": float("####" in answer),
        "logprob": max(-20.0, min(0.0, mean)),
        "logprob_missing": 0.0 if logprobs else 1.0,
    }


def post_vector(vec: Vectorizer, prompt: str, answer: str) -> dict[int, float]:
    """Hashed words of the request and (salted, so they land elsewhere) of the cheap answer."""
    out = dict(vec.transform(vec.text(prompt)))
    for i, v in vec.transform("\x01 " + answer if answer else "").items():
        j = (i * 2654435761 + 1) % vec.n_features  # a fixed permutation keeps answer words apart
        out[j] = out.get(j, 0.0) + v
    return out


@dataclass(frozen=True)
class PostModel:
    """P(the cheap answer is wrong | request, answer): the cascade's learned gate."""

    intercept: float
    weights: Mapping[int, float]
    dense: Mapping[str, tuple[float, float, float]]
    """name -> (weight, mean, scale): standardized before weighting."""
    threshold: float

    def score(self, vec: Vectorizer, prompt: str, answer: str, logprobs: tuple[float, ...] | None) -> float:
        z = self.intercept + sum(v * self.weights.get(i, 0.0) for i, v in post_vector(vec, prompt, answer).items())
        for name, value in answer_features(answer, logprobs).items():
            w, mean, scale = self.dense.get(name, (0.0, 0.0, 1.0))
            z += w * (value - mean) / scale
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "logistic",
            "intercept": self.intercept,
            "weights": {str(i): w for i, w in sorted(self.weights.items()) if w},
            "dense": {k: list(v) for k, v in self.dense.items()},
            "threshold": self.threshold,
        }


@functools.lru_cache(maxsize=1 << 14)
def _transform(vec: Vectorizer, text: str) -> dict[int, float]:
    return vec._compute(text)


@functools.lru_cache(maxsize=1 << 16)
def _bucket(token: str, n_features: int) -> tuple[int, float]:
    digest = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
    return digest % n_features, 1.0 if (digest >> 63) & 1 == 0 else -1.0


@dataclass(frozen=True)
class Router:
    """A logistic model over hashed features, with the threshold it was fitted to and how."""

    vectorizer: Vectorizer
    intercept: float
    weights: Mapping[int, float]
    threshold: float
    meta: Mapping[str, Any] = field(default_factory=dict)
    post: PostModel | None = None
    """The learned post-generation gate, when the file carries one."""

    def score(self, prompt: str, task: str = "", tenant: str = "") -> float:
        """P(the cheap model fails where the strong one succeeds) for this request."""
        x = self.vectorizer.transform(self.vectorizer.text(prompt, task, tenant))
        z = self.intercept + sum(v * self.weights.get(i, 0.0) for i, v in x.items())
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "vectorizer": {
                "kind": "hashing-blake2b",
                "n_features": self.vectorizer.n_features,
                "ngrams": self.vectorizer.ngrams,
                "inputs": list(self.vectorizer.inputs),
            },
            "model": {
                "kind": "logistic",
                "intercept": self.intercept,
                "weights": {str(i): w for i, w in sorted(self.weights.items()) if w},
            },
            "threshold": self.threshold,
            "meta": dict(self.meta),
            **({"post": self.post.to_json()} if self.post else {}),
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), separators=(",", ":"), sort_keys=False) + "\n", encoding="utf-8")


def _need(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidArgument(f"{where}.{key}", f"missing or not a {getattr(kind, '__name__', 'number')}")
    return value


def from_json(doc: Any, where: str = "router") -> Router:
    """A router from its JSON document; every wrong key is named."""
    if not isinstance(doc, dict):
        raise InvalidArgument(where, "expected a JSON object")
    if doc.get("format") != FORMAT:
        raise InvalidArgument(f"{where}.format", f"expected {FORMAT!r} (got {doc.get('format')!r})")
    if doc.get("version") != VERSION:
        raise InvalidArgument(f"{where}.version", f"this policyd reads version {VERSION} (got {doc.get('version')!r})")
    vec = _need(doc, "vectorizer", dict, where)
    if vec.get("kind") != "hashing-blake2b":
        raise InvalidArgument(f"{where}.vectorizer.kind", f"expected 'hashing-blake2b' (got {vec.get('kind')!r})")
    inputs = tuple(vec.get("inputs") or ("prompt",))
    if not set(inputs) <= set(INPUTS):
        raise InvalidArgument(f"{where}.vectorizer.inputs", f"known inputs: {', '.join(INPUTS)}")
    n_features = _need(vec, "n_features", int, f"{where}.vectorizer")
    model = _need(doc, "model", dict, where)
    if model.get("kind") != "logistic":
        raise InvalidArgument(f"{where}.model.kind", f"expected 'logistic' (got {model.get('kind')!r})")
    weights = _need(model, "weights", dict, f"{where}.model")
    try:
        parsed = {int(k): float(v) for k, v in weights.items()}
    except (TypeError, ValueError):
        raise InvalidArgument(f"{where}.model.weights", "must map bucket numbers to numbers") from None
    if any(not 0 <= k < n_features for k in parsed):
        raise InvalidArgument(f"{where}.model.weights", f"bucket outside 0..{n_features - 1}")
    return Router(
        vectorizer=Vectorizer(n_features, int(_need(vec, "ngrams", int, f"{where}.vectorizer")), inputs),
        intercept=float(_need(model, "intercept", (int, float), f"{where}.model")),
        weights=parsed,
        threshold=float(_need(doc, "threshold", (int, float), where)),
        meta=doc.get("meta") or {},
        post=_post(doc["post"], f"{where}.post", n_features) if doc.get("post") is not None else None,
    )


def _weights(doc: Mapping[str, Any], where: str, n_features: int) -> dict[int, float]:
    weights = _need(doc, "weights", dict, where)
    try:
        parsed = {int(k): float(v) for k, v in weights.items()}
    except (TypeError, ValueError):
        raise InvalidArgument(f"{where}.weights", "must map bucket numbers to numbers") from None
    if any(not 0 <= k < n_features for k in parsed):
        raise InvalidArgument(f"{where}.weights", f"bucket outside 0..{n_features - 1}")
    return parsed


def _post(doc: Any, where: str, n_features: int) -> PostModel:
    if not isinstance(doc, dict) or doc.get("kind") != "logistic":
        raise InvalidArgument(f"{where}.kind", "expected a logistic post-generation model")
    dense = _need(doc, "dense", dict, where)
    parsed: dict[str, tuple[float, float, float]] = {}
    for name, triple in dense.items():
        if name not in DENSE or not isinstance(triple, list) or len(triple) != 3:
            raise InvalidArgument(f"{where}.dense.{name}", f"expected one of {', '.join(DENSE)}: [weight, mean, scale]")
        w, mean, scale = (float(x) for x in triple)
        if scale <= 0:
            raise InvalidArgument(f"{where}.dense.{name}", "scale must be > 0")
        parsed[name] = (w, mean, scale)
    return PostModel(
        intercept=float(_need(doc, "intercept", (int, float), where)),
        weights=_weights(doc, where, n_features),
        dense=parsed,
        threshold=float(_need(doc, "threshold", (int, float), where)),
    )


def load(path: str | Path) -> Router:
    """Read a router file (JSON; never unpickled)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument("router", f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(str(p), f"not valid JSON: {exc.msg}") from None
    return from_json(doc, str(p))


def sparse_rows(vectorizer: Vectorizer, texts: Iterable[str]) -> list[dict[int, float]]:
    return [vectorizer.transform(t) for t in texts]
