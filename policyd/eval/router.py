"""Training pre-generation routers with scikit-learn, and fitting the ``route`` strategy's thresholds.

The label of a training item is "the cheap model fails where the strong one succeeds".
The logistic router is exported to a router file (``policyd.eval.routerfile``) that the
``route`` strategy scores in pure Python; the kNN router is the baseline the surveys
(LLMRouterBench; "The Routing Plateau") say most routers fail to beat, reported beside it.
Thresholds are fitted on *out-of-fold* scores of the training items, so the training
items' own labels never leak into the scores the threshold is chosen on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from policyd.errors import InvalidArgument
from policyd.eval.routerfile import PostModel, Router, Vectorizer


def _sklearn() -> Any:
    try:
        import sklearn
    except ImportError:
        raise InvalidArgument("router", "training a router needs scikit-learn: pip install 'policyd[router]'") from None
    return sklearn


def matrix(vec: Vectorizer, texts: Sequence[str]) -> Any:
    """The texts' hashed features as a scipy CSR matrix (the same numbers ``Router.score`` computes)."""
    import numpy as np
    from scipy.sparse import csr_matrix

    indptr: list[int] = [0]
    indices: list[int] = []
    data: list[float] = []
    for text in texts:
        row = vec.transform(text)
        indices.extend(row)
        data.extend(row.values())
        indptr.append(len(indices))
    return csr_matrix(
        (np.array(data, dtype=np.float64), np.array(indices, dtype=np.int64), np.array(indptr)),
        shape=(len(texts), vec.n_features),
    )


def _constant(y: Sequence[int]) -> float:
    """Log-odds of the (smoothed) positive rate, for a training set with one class only."""
    p = (sum(y) + 0.5) / (len(y) + 1.0)
    return math.log(p / (1 - p))


def _fit_logistic(x: Any, y: Sequence[int], *, c: float = 1.0) -> tuple[float, Any]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, solver="liblinear", class_weight="balanced", max_iter=1000)
    model.fit(x, list(y))
    return float(model.intercept_[0]), model.coef_[0]


def train_logistic(vec: Vectorizer, texts: Sequence[str], y: Sequence[int], *, c: float = 1.0) -> tuple[float, dict]:
    """(intercept, bucket -> weight) of an L2 logistic regression on the hashed features."""
    _sklearn()
    if len(set(y)) < 2:
        return _constant(y), {}
    intercept, coef = _fit_logistic(matrix(vec, texts), y, c=c)
    return intercept, {int(i): float(coef[i]) for i in coef.nonzero()[0]}


def router_of(vec: Vectorizer, texts: Sequence[str], y: Sequence[int], threshold: float, meta: dict) -> Router:
    intercept, weights = train_logistic(vec, texts, y)
    return Router(vec, intercept, weights, threshold, meta)


def cross_fitted_router(
    vec: Vectorizer, texts: Sequence[str], y: Sequence[int], meta: dict, *, seed: int = 0
) -> tuple[Router, list[float]]:
    """The averaged cross-fitted router (threshold to be set) and the out-of-fold scores of ``texts``."""
    _sklearn()
    oof, intercept, coef = cross_fit(matrix(vec, texts), y, seed=seed)
    weights = {int(i): float(coef[i]) for i in coef.nonzero()[0]}
    return Router(vec, intercept, weights, 0.5, meta), oof


def oof_scores(kind: str, x: Any, y: Sequence[int], *, k: int = 5, seed: int = 0) -> list[float]:
    """Each training row's score from a router trained on the other folds (``logistic`` or ``knn``)."""
    import numpy as np

    n = x.shape[0]
    out = np.zeros(n)
    order = np.random.default_rng(seed).permutation(n)
    ys = np.array(y)
    for f in range(min(k, n)):
        held = order[f::k]
        keep = np.setdiff1d(np.arange(n), held)
        out[held] = predict(kind, x[keep], ys[keep].tolist(), x[held])
    return out.tolist()


def cross_fit(x: Any, y: Sequence[int], *, k: int = 5, seed: int = 0) -> tuple[list[float], float, Any]:
    """Out-of-fold logistic scores of the rows, and the average of the k fold models (intercept, coef).

    The shipped model is that average, so a cut fitted on the out-of-fold scores applies to
    scores of the same kind (a model refitted on every row scores more extremely than the
    out-of-fold models did, and would route a different share than the cut was fitted for).
    """
    import numpy as np

    n = x.shape[0]
    out = np.zeros(n)
    order = np.random.default_rng(seed).permutation(n)
    ys = np.array(y)
    intercepts, coefs = [], []
    for f in range(min(k, n)):
        held = order[f::k]
        keep = np.setdiff1d(np.arange(n), held)
        if len(set(ys[keep].tolist())) < 2:
            b, w = _constant(ys[keep].tolist()), np.zeros(x.shape[1])
        else:
            b, w = _fit_logistic(x[keep], ys[keep].tolist())
        intercepts.append(b)
        coefs.append(w)
        z = np.clip(x[held] @ w + b, -700, 700)
        out[held] = 1.0 / (1.0 + np.exp(-z))
    return out.tolist(), float(np.mean(intercepts)), np.mean(coefs, axis=0)


def predict(kind: str, x_train: Any, y: Sequence[int], x: Any) -> list[float]:
    """Scores of rows ``x`` from a ``logistic`` or ``knn`` router trained on ``x_train``."""
    import numpy as np

    _sklearn()
    if len(set(y)) < 2 or x_train.shape[0] == 0:
        p = sum(y) / len(y) if y else 0.0
        return [p] * x.shape[0]
    if kind == "logistic":
        intercept, coef = _fit_logistic(x_train, y)
        z = np.clip(x @ coef + intercept, -700, 700)
        return (1.0 / (1.0 + np.exp(-z))).tolist()
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=min(KNN_K, x_train.shape[0]), metric="cosine", algorithm="brute")
    knn.fit(x_train, list(y))
    return [float(p) for p in knn.predict_proba(x)[:, 1]]


KNN_K = 25
"""Neighbours of the kNN baseline router (cosine distance on the same hashed features)."""


@dataclass(frozen=True)
class RouteFit:
    """The two thresholds of a ``route`` operating point: router score and the cascade's gate."""

    route_threshold: float
    gate_threshold: float | None


def route_thresholds(scores: Sequence[float], n: int = 24) -> list[float]:
    """Router thresholds worth trying: quantiles of the training scores, plus never (inf)."""
    finite = sorted(s for s in scores if math.isfinite(s))
    if not finite:
        return [math.inf]
    picks = {finite[min(len(finite) - 1, round(q * (len(finite) - 1) / n))] for q in range(n + 1)}
    return [*sorted(picks), math.inf]


def post_matrix(
    vec: Vectorizer,
    prompts: Sequence[str],
    answers: Sequence[str],
    logprobs: Sequence[tuple[float, ...] | None],
    stats: dict[str, tuple[float, float]] | None = None,
) -> tuple[Any, dict[str, tuple[float, float]]]:
    """Post-generation features (hashed request and answer words, standardized answer checks) as CSR,
    and the (mean, scale) of each named feature (computed here unless given: pass train's to test)."""
    import numpy as np
    from scipy.sparse import csr_matrix, hstack

    from policyd.eval.routerfile import DENSE, answer_features, post_vector

    rows = [post_vector(vec, p, a) for p, a in zip(prompts, answers, strict=True)]
    dense = np.array([[answer_features(a, lp)[k] for k in DENSE] for a, lp in zip(answers, logprobs, strict=True)])
    if stats is None:
        stats = {}
        for j, name in enumerate(DENSE):
            col = dense[:, j] if len(dense) else np.zeros(1)
            scale = float(col.std())
            stats[name] = (float(col.mean()), scale if scale > 1e-12 else 1.0)
    std = np.column_stack([(dense[:, j] - stats[k][0]) / stats[k][1] for j, k in enumerate(DENSE)])
    indptr: list[int] = [0]
    indices: list[int] = []
    data: list[float] = []
    for row in rows:
        indices.extend(row)
        data.extend(row.values())
        indptr.append(len(indices))
    hashed = csr_matrix(
        (np.array(data, dtype=np.float64), np.array(indices, dtype=np.int64), np.array(indptr)),
        shape=(len(rows), vec.n_features),
    )
    return hstack([hashed, csr_matrix(std)]).tocsr(), stats


def train_post(
    x: Any, y: Sequence[int], stats: dict[str, tuple[float, float]], n_features: int, *, seed: int = 0
) -> tuple[PostModel, list[float]]:
    """The learned gate: a logistic model of "the cheap answer is wrong" on post-generation features
    (averaged over cross-fitted folds), and its out-of-fold scores of the rows."""
    from policyd.eval.routerfile import DENSE

    _sklearn()
    oof, intercept, coef = cross_fit(x, y, seed=seed)
    weights = {int(i): float(coef[i]) for i in coef[:n_features].nonzero()[0]}
    dense = {k: (float(coef[n_features + j]), *stats[k]) for j, k in enumerate(DENSE)}
    return PostModel(intercept, weights, dense, 0.5), oof
