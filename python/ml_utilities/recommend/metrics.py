"""Ranking metrics: their names with a cut-off (``ndcg@10``), and how they are computed.

Two ways of scoring a ranking live here. :func:`ranking_metric` scores rows grouped by user
(the ranker's cross-validation, where the only relevant items a user can have are those among
the user's candidate rows); :func:`holdout_scores` scores the recommender end to end, against
every item held out of each user's history, candidates or not.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..exceptions import ParameterError

__all__ = [
    "RANKING_METRICS",
    "holdout_scores",
    "parse_ranking_metric",
    "ranking_cutoff",
    "ranking_metric",
]

#: the ranking metrics as a configuration names them; ``k`` stands for the cut-off (``ndcg@10``)
RANKING_METRICS = ("ndcg@k", "recall@k", "map@k")
_AT_K = re.compile(r"(ndcg|recall|map)@(\d+)")


def ranking_cutoff(metric: str) -> tuple[str, int] | None:
    """``'NDCG@10 '`` -> ``('ndcg', 10)``; None where ``metric`` (stripped, in lower case) is not
    a ranking metric with a numeric cut-off."""
    m = _AT_K.fullmatch(metric.strip().lower())
    return None if m is None else (m.group(1), int(m.group(2)))


def parse_ranking_metric(metric: Any, key: str = "optimization_metric") -> tuple[str, int]:
    """``'ndcg@10'`` -> ``('ndcg', 10)``: a ranking metric and its cut-off, checked.

    ``key`` is the configuration key the value came from, named in the errors.

    Raises
    ------
    ParameterError
        ``metric`` not a string, not one of :data:`RANKING_METRICS`, without a numeric cut-off,
        or with a cut-off below 1.
    """
    if not isinstance(metric, str):
        raise ParameterError(f"{key}={metric!r}: expected one of {list(RANKING_METRICS)}")
    at_k = ranking_cutoff(metric)
    if at_k is None:
        if metric.strip().lower() in RANKING_METRICS:
            raise ParameterError(
                f"{key}={metric!r}: ranking metrics take a cut-off, e.g. 'ndcg@10'"
            )
        raise ParameterError(
            f"{key}={metric!r} is not available for task_type='recommendation'; "
            f"choose one of {list(RANKING_METRICS)}"
        )
    if at_k[1] < 1:
        raise ParameterError(f"{key}={metric!r}: k must be >= 1")
    return at_k


def ranking_metric(
    kind: str, y: np.ndarray, scores: np.ndarray, groups: np.ndarray, k: int
) -> float:
    """Mean over groups of ndcg@k (graded gains ``2^rel - 1``), recall@k or MAP@k.

    ``recall@k`` divides by ``min(k, relevant items in the group)``; groups without a relevant
    item count as 0 for every metric (the items a user will listen to are not all in the
    candidate list; see :mod:`ml_utilities.recommend.train` for the end-to-end protocol).
    """
    y = np.asarray(y, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((-scores, groups))
    g_sorted = groups[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    ends = np.r_[starts[1:], len(order)]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    total = 0.0
    for s, e in zip(starts, ends, strict=True):
        rel = y[order[s:e]]
        top = rel[:k]
        if kind == "ndcg":
            ideal = np.sort(rel)[::-1][:k]
            idcg = float(((2.0**ideal - 1.0) * discounts[: len(ideal)]).sum())
            if idcg > 0:
                total += float(((2.0**top - 1.0) * discounts[: len(top)]).sum()) / idcg
        else:
            n_rel = int((rel > 0).sum())
            if n_rel == 0:
                continue
            hits = top > 0
            if kind == "recall":
                total += hits.sum() / min(k, n_rel)
            else:
                prec = np.cumsum(hits) / np.arange(1, len(top) + 1)
                total += float((prec * hits).sum()) / min(k, n_rel)
    return total / max(len(starts), 1)


def holdout_scores(
    ranked: dict[int, np.ndarray], truth: dict[int, set[int]], k: int
) -> tuple[float, float]:
    """(ndcg@k, recall@k) of ``ranked`` (user -> items, best first) against ``truth`` (user ->
    held-out items), averaged over the users of ``truth``: binary gains, the ideal DCG and the
    recall's denominator over ``min(k, held-out items)``; a user without a ranking scores 0."""
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    nd, rc = [], []
    for u, items in truth.items():
        top = ranked.get(u, np.array([], dtype=np.int64))[:k]
        hits = np.array([it in items for it in top], dtype=float)
        m = min(k, len(items))
        nd.append(float((hits * disc[: len(hits)]).sum() / disc[:m].sum()))
        rc.append(float(hits.sum() / m))
    return float(np.mean(nd)), float(np.mean(rc))
