"""Out-of-core training: read a source chunk by chunk and fit estimators with ``partial_fit``.

Memory holds one chunk at a time, so a PostgreSQL table (or Parquet/CSV file, Redis keyspace,
API, stream) larger than memory can be learned from. Two passes over the source:

1. statistics: :class:`~sklearn.preprocessing.StandardScaler` ``partial_fit`` (NaN-aware) on the
   numeric columns, and the set of classes;
2. ``epochs`` passes of ``estimator.partial_fit`` on scaled chunks (missing values become the
   column mean, i.e. 0 after scaling; text columns are hashed by
   :class:`~sklearn.feature_extraction.FeatureHasher`, which needs no fit).

A share ``holdout`` of each chunk, chosen by a generator seeded per chunk (the same rows every
pass), is never fitted on; in the last pass it is scored right after the chunk's fit
(progressive validation, so memory stays one chunk) and gives the returned metrics. A one-shot
stream (an iterator) is read once: the scaler is then updated chunk by chunk just before each
``partial_fit``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from .errors import ParameterError, PipelineConfigError
from .sources import check_source, iter_batches

__all__ = ["IncrementalModel", "fit_incremental"]

logger = logging.getLogger(__name__)


class IncrementalModel:
    """What :func:`fit_incremental` returns: scaler, estimator, columns and metrics."""

    def __init__(
        self,
        scaler: Any,
        estimator: Any,
        numeric: list[str],
        hashed: list[str],
        hasher: Any,
        task: str,
        metrics: dict[str, Any],
    ) -> None:
        self.scaler = scaler
        self.estimator = estimator
        self.numeric_columns = numeric
        self.hashed_columns = hashed
        self.hasher = hasher
        self.task = task
        self.metrics = metrics

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame[self.numeric_columns].to_numpy(dtype=np.float64)
        x = self.scaler.transform(x)
        x = np.where(np.isnan(x), 0.0, x)
        if self.hashed_columns:
            rows = frame[self.hashed_columns].astype(str).to_numpy()
            tokens = [
                [f"{c}={v}" for c, v in zip(self.hashed_columns, r, strict=True)] for r in rows
            ]
            x = np.hstack([x, self.hasher.transform(tokens).toarray()])
        return x

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict(self.transform(frame))


def _estimator(task: str, estimator: Any, seed: int) -> Any:
    if estimator is None:
        from sklearn.linear_model import SGDClassifier, SGDRegressor

        if task == "classification":
            return SGDClassifier(loss="log_loss", random_state=seed)
        return SGDRegressor(random_state=seed)
    if not hasattr(estimator, "partial_fit"):
        raise ParameterError(
            f"estimator {type(estimator).__name__} has no partial_fit: incremental fitting "
            "needs one (SGDClassifier, SGDRegressor, MultinomialNB, MLPClassifier, ...)"
        )
    return estimator


def fit_incremental(
    source: dict[str, Any],
    target_column: str,
    *,
    task: str = "classification",
    chunk_size: int = 100_000,
    estimator: Any = None,
    feature_columns: list[str] | None = None,
    hash_columns: list[str] | None = None,
    hash_features: int = 256,
    epochs: int = 1,
    holdout: float = 0.1,
    seed: int = 0,
) -> IncrementalModel:
    """Fit ``estimator`` (default SGD) on ``source`` one chunk of ``chunk_size`` rows at a time.

    Parameters
    ----------
    source : dict
        A ``data_sources`` entry (see :mod:`ml_utilities.pipeline.sources`).
    target_column : str
    task : {"classification", "regression"}
    feature_columns : list of str, optional
        Numeric features (default: every numeric column but the target).
    hash_columns : list of str, optional
        Categorical columns hashed into ``hash_features`` columns.
    epochs : int
        Passes of ``partial_fit`` over the source (a one-shot stream allows 1).
    holdout : float in [0, 1)
        Share of each chunk kept out of fitting for the returned metrics.

    Returns
    -------
    IncrementalModel
        With ``metrics``: ``n_rows``, ``n_chunks``, ``max_chunk_rows``, ``seconds`` and, with a
        holdout, ``accuracy`` (classification) or ``rmse`` / ``r2`` (regression).
    """
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.preprocessing import StandardScaler

    if task not in ("classification", "regression"):
        raise ParameterError(f"task={task!r}: expected 'classification' or 'regression'")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ParameterError(f"epochs={epochs!r}: expected an integer >= 1")
    if not 0 <= holdout < 1:
        raise ParameterError(f"holdout={holdout!r}: expected a share in [0, 1)")
    spec = check_source(source)
    one_shot = spec["type"] == "stream" and isinstance(spec["records"], Iterator)
    if one_shot and epochs > 1:
        raise PipelineConfigError("a one-shot iterator can be read once: use epochs=1")
    start = time.perf_counter()
    est = _estimator(task, estimator, seed)
    hashed = list(hash_columns or [])
    hasher = FeatureHasher(n_features=hash_features, input_type="string") if hashed else None
    scaler = StandardScaler()
    numeric: list[str] | None = list(feature_columns) if feature_columns else None
    classes: set[Any] = set()
    stats = {"n_rows": 0, "n_chunks": 0, "max_chunk_rows": 0}

    def columns_of(chunk: pd.DataFrame) -> list[str]:
        if target_column not in chunk.columns:
            raise ParameterError(
                f"target_column={target_column!r} is not in the source's columns "
                f"{list(chunk.columns)}"
            )
        missing = [c for c in (numeric or []) + hashed if c not in chunk.columns]
        if missing:
            raise ParameterError(f"column(s) {missing} not in the source ({list(chunk.columns)})")
        return numeric or [
            c
            for c in chunk.columns
            if c != target_column
            and c not in hashed
            and pd.api.types.is_numeric_dtype(chunk[c])
            and not pd.api.types.is_bool_dtype(chunk[c])
        ]

    def split(i: int, n: int) -> np.ndarray:
        rng = np.random.default_rng([seed, i])
        return rng.random(n) < holdout

    if not one_shot:
        for chunk in iter_batches(spec, chunk_size):
            numeric = columns_of(chunk)
            scaler.partial_fit(chunk[numeric].to_numpy(dtype=np.float64))
            if task == "classification":
                classes.update(pd.unique(chunk[target_column].dropna()))
    model: IncrementalModel | None = None
    # holdout scores are accumulated chunk by chunk (memory stays one chunk)
    acc = {"n": 0, "correct": 0.0, "sse": 0.0, "sum": 0.0, "sum2": 0.0}
    fitted = False
    for epoch in range(epochs):
        for i, chunk in enumerate(iter_batches(spec, chunk_size)):
            numeric = columns_of(chunk)
            chunk = chunk[chunk[target_column].notna()]
            if one_shot:
                scaler.partial_fit(chunk[numeric].to_numpy(dtype=np.float64))
                if task == "classification":
                    classes.update(pd.unique(chunk[target_column]))
            model = IncrementalModel(scaler, est, numeric, hashed, hasher, task, {})
            x = model.transform(chunk)
            y = chunk[target_column].to_numpy()
            hold = split(i, len(chunk))
            if epoch == 0:
                stats["n_rows"] += len(chunk)
                stats["n_chunks"] += 1
                stats["max_chunk_rows"] = max(stats["max_chunk_rows"], len(chunk))
            if (~hold).any():
                fitted = True
                if task == "classification":
                    est.partial_fit(x[~hold], y[~hold], classes=np.array(sorted(classes)))
                else:
                    est.partial_fit(x[~hold], y[~hold].astype(np.float64))
            if epoch == epochs - 1 and hold.any() and fitted:
                pred = est.predict(x[hold])
                yt = y[hold]
                acc["n"] += len(yt)
                if task == "classification":
                    acc["correct"] += float(np.sum(pred == yt))
                else:
                    yt = yt.astype(np.float64)
                    acc["sse"] += float(np.sum((pred - yt) ** 2))
                    acc["sum"] += float(yt.sum())
                    acc["sum2"] += float(np.sum(yt**2))
    if model is None:
        raise ParameterError("the source gave no rows")
    metrics: dict[str, Any] = dict(stats)
    if acc["n"]:
        n = acc["n"]
        if task == "classification":
            metrics["accuracy"] = acc["correct"] / n
        else:
            metrics["rmse"] = float(np.sqrt(acc["sse"] / n))
            sst = acc["sum2"] - acc["sum"] ** 2 / n
            metrics["r2"] = float(1 - acc["sse"] / sst) if sst > 0 else float("nan")
        metrics["n_holdout"] = int(n)
    metrics["seconds"] = round(time.perf_counter() - start, 4)
    model.metrics = metrics
    return model
