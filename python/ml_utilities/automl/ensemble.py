"""Ensembles built from out-of-fold predictions only.

``voting`` is greedy ensemble selection with replacement (Caruana et al., 2004, as in
auto-sklearn): start from the best model and repeatedly add the model, possibly again, whose
addition to the average gives the best score; the counts are the weights. ``stacking`` fits a
regularised linear meta-learner (multinomial logistic regression on log-probabilities, ridge on
values or ranking scores) on the base models' out-of-fold predictions.

Both are scored honestly by cross-fitting over the same folds as the search: the weights (or the
meta-learner) are chosen on the other folds' rows and scored on the left-out fold, so the figures
in the report can be compared with the single best model's out-of-fold score.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..models.adapters.sklearn import PREFIT, SklearnAdapter
from .families import make_adapter
from .search import Problem

__all__ = ["EnsembleResult", "caruana_weights", "fit_stacking", "voting", "stacking"]

#: rounds of greedy selection
CARUANA_ROUNDS = 40
#: base models a stacking meta-learner sees at most
STACK_MODELS = 8


@dataclass
class EnsembleResult:
    """Weights (voting) or a meta-learner (stacking) over candidate models, and its score."""

    kind: str
    members: list[int]  # indices into the candidate list
    weights: list[float] | None
    meta: Any | None  # stacking: the meta-learner in its SklearnAdapter
    score: float  # cross-fitted, higher is better


def _fast_scorer(problem: Problem) -> Callable[[np.ndarray, np.ndarray], tuple[float, float]]:
    """``(rows, prediction) -> (score, tie-break)``: numpy fast paths for the common metrics;
    ties in accuracy are broken by the log-loss."""
    name = problem.metric.name
    y = problem.y

    def tie(rows: np.ndarray, p: np.ndarray) -> float:
        if problem.task != "classification":
            return 0.0
        q = np.clip(p[np.arange(len(rows)), y[rows]], 1e-15, 1.0)
        return float(np.mean(np.log(q)))

    if name == "accuracy":
        return lambda rows, p: (float(np.mean(np.argmax(p, axis=1) == y[rows])), tie(rows, p))
    if name == "log_loss":
        return lambda rows, p: (tie(rows, p), 0.0)
    if name == "r2":

        def r2(rows: np.ndarray, p: np.ndarray) -> tuple[float, float]:
            t = y[rows]
            ss = float(np.sum((t - t.mean()) ** 2)) or 1.0
            return 1.0 - float(np.sum((p - t) ** 2)) / ss, 0.0

        return r2
    if name == "rmse":
        return lambda rows, p: (-float(np.sqrt(np.mean((p - y[rows]) ** 2))), 0.0)
    return lambda rows, p: (problem.score(rows, p), tie(rows, p))


def normalise(problem: Problem, preds: list[np.ndarray]) -> list[np.ndarray]:
    """Ranking scores of different models live on different scales: standardise each."""
    if problem.task != "ranking":
        return preds
    return [(p - p.mean()) / (p.std() or 1.0) for p in preds]


def caruana_weights(
    preds: list[np.ndarray],
    rows: np.ndarray,
    scorer: Callable[[np.ndarray, np.ndarray], tuple[float, float]],
    rounds: int = CARUANA_ROUNDS,
) -> np.ndarray:
    """Counts of each model after greedy selection with replacement on ``rows``."""
    sub = [p[rows] for p in preds]
    counts = np.zeros(len(preds))
    first = max(range(len(sub)), key=lambda i: scorer(rows, sub[i]))
    counts[first] = 1
    total = sub[first].astype(np.float64)
    best = scorer(rows, total)
    for _ in range(rounds - 1):
        n = counts.sum()
        cand = [(scorer(rows, (total + s) / (n + 1)), i) for i, s in enumerate(sub)]
        value, i = max(cand, key=lambda c: c[0])
        if value < best and n >= 5:
            break
        counts[i] += 1
        total = total + sub[i]
        best = max(best, value)
    return counts


def _fits(deadline: float, started: float, done: int, total: int) -> bool:
    """Whether ``total - done`` more steps, as slow as the ``done`` so far, end by ``deadline``."""
    now = time.monotonic()
    if done == 0:
        return now < deadline
    return now + 1.2 * (now - started) / done * (total - done) <= deadline


def voting(
    problem: Problem, preds: list[np.ndarray], deadline: float = float("inf")
) -> EnsembleResult | None:
    """Greedy selection, cross-fitted on the search's folds; None when it cannot end by
    ``deadline`` (monotonic clock)."""
    preds = normalise(problem, preds)
    scorer = _fast_scorer(problem)
    crossfit = np.zeros_like(preds[0], dtype=np.float64)
    started = time.monotonic()
    steps = len(problem.folds) + 1
    for f, (tr, va) in enumerate(problem.folds):
        if not _fits(deadline, started, f, steps):
            return None
        w = caruana_weights(preds, tr, scorer)
        crossfit[va] = sum(wi * p[va] for wi, p in zip(w, preds, strict=True)) / w.sum()
    if not _fits(deadline, started, steps - 1, steps):
        return None
    weights = caruana_weights(preds, np.arange(len(problem.y)), scorer)
    members = [int(i) for i in np.flatnonzero(weights)]
    return EnsembleResult(
        "voting",
        members,
        [float(weights[i] / weights.sum()) for i in members],
        None,
        problem.score(None, crossfit.astype(np.float32)),
    )


def _meta_features(problem: Problem, preds: list[np.ndarray]) -> np.ndarray:
    if problem.task == "classification":
        return np.concatenate([np.log(np.clip(p, 1e-6, 1.0)) for p in preds], axis=1)
    return np.stack(normalise(problem, preds), axis=1)


def fit_stacking(problem: Problem, z: np.ndarray, rows: np.ndarray) -> Any:
    """The meta-learner on meta-features ``z`` of ``rows``, in the adapter that predicts,
    saves and loads it."""
    if problem.task == "classification":
        from sklearn.linear_model import LogisticRegression

        meta: Any = LogisticRegression(C=0.1, max_iter=500).fit(z[rows], problem.y[rows])
    else:
        from sklearn.linear_model import RidgeCV

        meta = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(z[rows], problem.y[rows])
    adapter = make_adapter(
        SklearnAdapter, PREFIT, problem.task, problem.n_classes, z.shape[1], problem.seed
    )
    return adapter.adopt(meta)


def stacking(
    problem: Problem, preds: list[np.ndarray], deadline: float = float("inf")
) -> EnsembleResult | None:
    """The meta-learner, cross-fitted on the search's folds; None when it cannot end by
    ``deadline`` (monotonic clock)."""
    members = list(range(min(len(preds), STACK_MODELS)))
    z = _meta_features(problem, [preds[i] for i in members])
    crossfit = np.zeros((len(problem.y), *preds[0].shape[1:]), dtype=np.float32)
    started = time.monotonic()
    steps = len(problem.folds) + 1
    for f, (tr, va) in enumerate(problem.folds):
        if not _fits(deadline, started, f, steps):
            return None
        crossfit[va] = fit_stacking(problem, z, tr).predict_raw(z[va])
    if not _fits(deadline, started, steps - 1, steps):
        return None
    meta = fit_stacking(problem, z, np.arange(len(problem.y)))
    return EnsembleResult("stacking", members, None, meta, problem.score(None, crossfit))


def stacking_features(
    problem_task: str, preds: list[np.ndarray], scales: list[tuple[float, float]]
) -> np.ndarray:
    """Meta-features of new rows (``scales``: the OOF mean and std of each ranking model)."""
    if problem_task == "classification":
        return np.concatenate([np.log(np.clip(p, 1e-6, 1.0)) for p in preds], axis=1)
    if problem_task == "ranking":
        preds = [(p - m) / (s or 1.0) for p, (m, s) in zip(preds, scales, strict=True)]
    return np.stack(preds, axis=1)
